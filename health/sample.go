package health

import (
	"context"
	"time"
)

// Names of the readings, as used in Sample.Unknown, Forecast.Resource and
// Warning.Resource.
const (
	ReadProcessCPU = "process_cpu"
	ReadSystemCPU  = "system_cpu"
	ReadRSS        = "rss"
	ReadSystemMem  = "system_memory"
	ReadCgroup     = "cgroup_memory"
	ReadGoRuntime  = "go_runtime"
	ReadFDs        = "fds"
	ReadFDLimit    = "fd_limit"
	ReadDisk       = "disk" // per path: "disk:<path>"

	// ResourceMemory, ResourceFDs and ResourceDisk name the limited
	// resources that are forecast and drive the level.
	ResourceMemory = "memory"
	ResourceFDs    = "fds"
)

// Sample is one set of raw readings. A reading that could not be taken is
// zero and has an entry in Unknown saying why.
type Sample struct {
	// Time is when the sample was taken.
	Time time.Time
	// ProcessCPU is the CPU this process used since the previous sample,
	// in cores (1.0 is one core busy).
	ProcessCPU float64
	// SystemCPU is the busy fraction of all the host's cores since the
	// previous sample, in [0, 1].
	SystemCPU float64
	// NumCPU is the number of logical CPUs.
	NumCPU int
	// RSS is the process's resident set size in bytes.
	RSS uint64
	// SystemTotal and SystemAvailable are the host's memory in bytes.
	SystemTotal, SystemAvailable uint64
	// CgroupLimit is the cgroup's memory limit in bytes; 0 when the
	// process is in no limited cgroup. CgroupUsage is its current usage.
	CgroupLimit, CgroupUsage uint64
	// HeapLive is the Go heap's bytes in live and unswept objects,
	// HeapGoal the GC's heap goal, GoTotal all memory the Go runtime
	// mapped, and Goroutines the goroutine count.
	HeapLive, HeapGoal, GoTotal, Goroutines uint64
	// FDs is the number of open file descriptors; FDLimit is the soft
	// RLIMIT_NOFILE.
	FDs, FDLimit uint64
	// Disks has one entry per configured path.
	Disks []DiskUsage
	// Unknown maps a reading's name (Read* constants) to why it is
	// missing. Nil when every reading was taken.
	Unknown map[string]string `json:",omitempty"`
}

// DiskUsage is the space on the filesystem holding one path.
type DiskUsage struct {
	// Path is the configured path.
	Path string
	// Total and Free are in bytes; Free counts what an unprivileged
	// writer can use.
	Total, Free uint64
}

// unknown records that reading name is missing because of err.
func (s *Sample) unknown(name string, err error) {
	if s.Unknown == nil {
		s.Unknown = map[string]string{}
	}
	s.Unknown[name] = err.Error()
}

// Source takes samples. It is called from one goroutine at a time. It must
// not panic; what it cannot read goes in Sample.Unknown.
type Source interface {
	Sample(ctx context.Context) Sample
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(ctx context.Context) Sample

// Sample calls f.
func (f SourceFunc) Sample(ctx context.Context) Sample { return f(ctx) }
