package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

// Machine describes the host a run happened on.
type Machine struct {
	// NProc is the number of CPUs this process may use (as nproc prints).
	NProc int `json:"nproc"`
	// CPUModel is the first "model name" of /proc/cpuinfo.
	CPUModel string `json:"cpu_model"`
	// MemBytes is MemTotal of /proc/meminfo.
	MemBytes uint64 `json:"mem_bytes"`
	// Kernel is /proc/sys/kernel/osrelease.
	Kernel string `json:"kernel"`
	// OSArch is GOOS/GOARCH.
	OSArch string `json:"os_arch"`
	// GoVersion is the Go toolchain that built the bench program.
	GoVersion string `json:"go_version"`
	// LoadAvgStart and LoadAvgEnd are the 1, 5 and 15 minute load averages
	// when the run started and ended: a busy machine explains a wide spread.
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

func probeMachine() Machine {
	m := Machine{
		NProc:        runtime.NumCPU(),
		OSArch:       runtime.GOOS + "/" + runtime.GOARCH,
		GoVersion:    runtime.Version(),
		LoadAvgStart: loadAvg(),
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseUint(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0], 10, 64); err == nil {
		m.MemBytes = kb * 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fs := strings.Fields(string(b))
	if len(fs) > 3 {
		fs = fs[:3]
	}
	return strings.Join(fs, " ")
}

// variantInfo asks the variant's binary for its version.
func variantInfo(v workload.Variant) VariantInfo {
	vi := VariantInfo{Name: v.Name, Bin: v.Bin, StagedFrom: v.StagedFrom, Profiles: v.Profiles}
	if vi.Profiles == nil {
		vi.Profiles = []string{}
	}
	for _, st := range v.Config {
		buf, err := json.Marshal(st.Value)
		if err != nil {
			buf = []byte(fmt.Sprint(st.Value))
		}
		vi.Config = append(vi.Config, st.Path+"="+string(buf))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, v.Bin, "version", "--all").Output()
	if err == nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		vi.Version = first
	}
	return vi
}
