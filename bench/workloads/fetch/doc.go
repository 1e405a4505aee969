// Package fetch holds the fetch workloads W1-W4: real daemons of one variant
// on 127.0.0.1, a fetcher timing `pin add` of a fresh random file from one or
// more providers. Importing it registers the workloads.
package fetch
