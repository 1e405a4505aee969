// Package datastore holds W6: a Zipf trace of Get/Put/Has run against
// go-datastore implementations, with a Belady (optimal offline) cache
// simulation as the yardstick for hit ratios. Importing it registers the
// workload.
package datastore
