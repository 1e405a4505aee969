//go:build !unix

package health

// processCPU is unknown here; the benchmarks then report wall time only.
func processCPU() int64 { return 0 }
