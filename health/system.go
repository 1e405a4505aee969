package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// runtime/metrics names read on every sample.
var goMetricNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/goal:bytes",
	"/memory/classes/total:bytes",
	"/sched/goroutines:goroutines",
}

// SystemSource reads this process and its host through gopsutil v4, the
// cgroup v2/v1 memory files, and runtime/metrics. Create it with
// NewSystemSource.
type SystemSource struct {
	paths    []string
	proc     *process.Process
	procErr  error
	goSample []metrics.Sample
	cgroup   cgroupFiles

	// CPU times at the previous sample, for deltas.
	lastProc   float64
	lastWhen   time.Time
	lastSysAll float64
	lastSysBsy float64
	haveLast   bool
}

var _ Source = (*SystemSource)(nil)

// NewSystemSource returns a Source for this process that reports free space
// on each of diskPaths. A path that does not exist is reported unknown at
// each sample, not refused here: it may be created later.
func NewSystemSource(diskPaths []string) *SystemSource {
	s := &SystemSource{paths: append([]string(nil), diskPaths...)}
	s.proc, s.procErr = process.NewProcess(int32(os.Getpid()))
	s.goSample = make([]metrics.Sample, len(goMetricNames))
	for i, n := range goMetricNames {
		s.goSample[i].Name = n
	}
	s.cgroup = findCgroup()
	return s
}

// Sample takes one sample. Errors become Unknown entries.
func (s *SystemSource) Sample(ctx context.Context) Sample {
	out := Sample{Time: time.Now(), NumCPU: runtime.NumCPU()}
	s.sampleProcess(ctx, &out)
	s.sampleSystem(ctx, &out)
	s.sampleGo(&out)
	s.sampleCgroup(&out)
	for _, p := range s.paths {
		u, err := disk.UsageWithContext(ctx, p)
		if err != nil {
			out.unknown(ReadDisk+":"+p, err)
			continue
		}
		out.Disks = append(out.Disks, DiskUsage{Path: p, Total: u.Total, Free: u.Free})
	}
	return out
}

func (s *SystemSource) sampleProcess(ctx context.Context, out *Sample) {
	if s.proc == nil {
		err := fmt.Errorf("health: cannot open own process: %w", s.procErr)
		for _, n := range []string{ReadProcessCPU, ReadRSS, ReadFDs, ReadFDLimit} {
			out.unknown(n, err)
		}
		return
	}
	if t, err := s.proc.TimesWithContext(ctx); err != nil {
		out.unknown(ReadProcessCPU, err)
	} else {
		busy := t.User + t.System
		if s.haveLast {
			if dt := out.Time.Sub(s.lastWhen).Seconds(); dt > 0 {
				out.ProcessCPU = max(0, (busy-s.lastProc)/dt)
			}
		} else {
			out.unknown(ReadProcessCPU, errors.New("first sample: no interval yet"))
		}
		s.lastProc = busy
	}
	if m, err := s.proc.MemoryInfoWithContext(ctx); err != nil {
		out.unknown(ReadRSS, err)
	} else {
		out.RSS = m.RSS
	}
	if n, err := s.proc.NumFDsWithContext(ctx); err != nil {
		out.unknown(ReadFDs, err)
	} else {
		out.FDs = uint64(n)
	}
	if lim, err := fdLimit(); err != nil {
		out.unknown(ReadFDLimit, err)
	} else {
		out.FDLimit = lim
	}
}

func (s *SystemSource) sampleSystem(ctx context.Context, out *Sample) {
	if ts, err := cpu.TimesWithContext(ctx, false); err != nil || len(ts) == 0 {
		if err == nil {
			err = errors.New("no CPU times reported")
		}
		out.unknown(ReadSystemCPU, err)
	} else {
		t := ts[0]
		all := cpuTotal(t)
		bsy := all - t.Idle - t.Iowait
		if s.haveLast && all > s.lastSysAll {
			out.SystemCPU = min(1, max(0, (bsy-s.lastSysBsy)/(all-s.lastSysAll)))
		} else if !s.haveLast {
			out.unknown(ReadSystemCPU, errors.New("first sample: no interval yet"))
		}
		s.lastSysAll, s.lastSysBsy = all, bsy
	}
	s.lastWhen, s.haveLast = out.Time, true
	if v, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		out.unknown(ReadSystemMem, err)
	} else {
		out.SystemTotal, out.SystemAvailable = v.Total, v.Available
	}
}

func (s *SystemSource) sampleGo(out *Sample) {
	metrics.Read(s.goSample)
	vals := make([]uint64, len(s.goSample))
	for i, m := range s.goSample {
		if m.Value.Kind() != metrics.KindUint64 {
			out.unknown(ReadGoRuntime, fmt.Errorf("runtime/metrics: %s not supported", m.Name))
			continue
		}
		vals[i] = m.Value.Uint64()
	}
	out.HeapLive, out.HeapGoal, out.GoTotal, out.Goroutines = vals[0], vals[1], vals[2], vals[3]
}

// cgroupFiles are the memory limit and usage files of this process's
// cgroup; empty when none was found.
type cgroupFiles struct {
	limit, usage string
	err          error
}

// findCgroup locates the memory files of this process's cgroup: v2 (the
// unified hierarchy) first, then v1's memory controller.
func findCgroup() cgroupFiles {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return cgroupFiles{err: fmt.Errorf("no cgroup information: %w", err)}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// Lines are "hierarchy-ID:controllers:path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			dir := filepath.Join("/sys/fs/cgroup", parts[2])
			if _, err := os.Stat(filepath.Join(dir, "memory.max")); err == nil {
				return cgroupFiles{limit: filepath.Join(dir, "memory.max"), usage: filepath.Join(dir, "memory.current")}
			}
			// A container often sees its own cgroup as the root.
			if _, err := os.Stat("/sys/fs/cgroup/memory.max"); err == nil {
				return cgroupFiles{limit: "/sys/fs/cgroup/memory.max", usage: "/sys/fs/cgroup/memory.current"}
			}
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				dir := filepath.Join("/sys/fs/cgroup/memory", parts[2])
				if _, err := os.Stat(filepath.Join(dir, "memory.limit_in_bytes")); err != nil {
					dir = "/sys/fs/cgroup/memory"
				}
				return cgroupFiles{limit: filepath.Join(dir, "memory.limit_in_bytes"), usage: filepath.Join(dir, "memory.usage_in_bytes")}
			}
		}
	}
	return cgroupFiles{err: errors.New("no memory cgroup for this process")}
}

// noCgroupLimit is v1's "unlimited" (a page-rounded max int64); anything at
// or above it is treated as no limit.
const noCgroupLimit = 1 << 62

func (s *SystemSource) sampleCgroup(out *Sample) {
	if s.cgroup.err != nil {
		out.unknown(ReadCgroup, s.cgroup.err)
		return
	}
	lim, err := readCgroupValue(s.cgroup.limit)
	if err != nil {
		out.unknown(ReadCgroup, err)
		return
	}
	use, err := readCgroupValue(s.cgroup.usage)
	if err != nil {
		out.unknown(ReadCgroup, err)
		return
	}
	if lim < noCgroupLimit {
		out.CgroupLimit = lim
	}
	out.CgroupUsage = use
}

// readCgroupValue reads a number of bytes, or "max" (no limit, returned as
// the maximum uint64).
func readCgroupValue(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	t := strings.TrimSpace(string(b))
	if t == "max" {
		return ^uint64(0), nil
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, t)
	}
	return v, nil
}

// cpuTotal is the CPU time /proc/stat counts in all: gopsutil's
// TimesStat.Total is deprecated, and it adds guest time, which Linux
// already counts in user (and guest_nice in nice), twice.
func cpuTotal(t cpu.TimesStat) float64 {
	return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
}
