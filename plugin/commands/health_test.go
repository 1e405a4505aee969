package commands

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/health"
)

func TestWriteHealth(t *testing.T) {
	s := &health.Snapshot{
		Sample: health.Sample{RSS: 3 << 30, SystemTotal: 16 << 30, SystemAvailable: 8 << 30, FDs: 100, FDLimit: 1000,
			NumCPU: 2, ProcessCPU: 0.5, SystemCPU: 0.25,
			Disks:   []health.DiskUsage{{Path: "/repo", Free: 1 << 30, Total: 10 << 30}},
			Unknown: map[string]string{health.ReadCgroup: "no memory cgroup for this process"}},
		Level: health.Elevated, PressureKnown: true, Pressure: 0.83, Driver: "memory", MemoryBudget: 4 << 30,
		Forecasts: []health.Forecast{{Resource: "memory", PerSecond: 1 << 20, Exhausts: true, TimeToLimit: 17 * time.Minute}},
		Warnings:  []health.Warning{{Resource: "memory", Message: "memory at 83% of its limit"}},
		Samples:   7,
	}
	var b bytes.Buffer
	if err := writeHealth(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Pressure level: elevated", "highest: memory at 83%", "RSS 3.0 GiB of budget 4.0 GiB (75%)",
		"FDs:     100 open of 1000 (10%)", "/repo: 1.0 GiB free of 10 GiB", "memory: +1.0 MiB/s; limit reached in 17m0s",
		"memory at 83% of its limit", "cgroup_memory: no memory cgroup", "Samples: 7",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("health text lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteTunerAndAdvice(t *testing.T) {
	before, after := 100.0, 90.0
	s := &autotune.Status{State: "measuring", Window: time.Minute,
		Knobs: []autotune.KnobStatus{{Name: "go.GOGC", Unit: "percent", Value: 100, Min: 50, Max: 400, Step: 25, Model: "2 points"}},
		Changes: []autotune.Change{
			{Seq: 1, Kind: autotune.KindTrial, Knob: "go.GOGC", Unit: "percent", From: 100, To: 125, Reason: "explore", Before: &before, After: &after, Outcome: "rolled back"},
			{Seq: 2, Kind: autotune.KindRollback, Knob: "go.GOGC", Unit: "percent", From: 125, To: 100, Reason: "worse: ..."},
		}}
	var b bytes.Buffer
	if err := writeTuner(&b, s, 1); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "go.GOGC  100 percent  [50, 400] step 25") || !strings.Contains(out, "Changes (2):") ||
		strings.Contains(out, "#1 ") || !strings.Contains(out, "#2 ") {
		t.Fatalf("tuner text (limit 1):\n%s", out)
	}
	b.Reset()
	if err := writeTuner(&b, &autotune.Status{State: "no knobs registered"}, 20); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Knobs: no knobs registered") {
		t.Fatalf("empty tuner text:\n%s", b.String())
	}
	b.Reset()
	r := &autotune.Report{Series: 3, Points: 10, Since: time.Unix(0, 0), Findings: []autotune.Finding{{
		Metric: "open_fds", Kind: "trend", Message: "open file descriptors has risen steadily", Advice: "raise the fd limit"}}}
	if err := writeAdvice(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "1. [trend] open file descriptors") || !strings.Contains(b.String(), "change: raise the fd limit") {
		t.Fatalf("advice text:\n%s", b.String())
	}
}

func TestWriteIsolation(t *testing.T) {
	var b bytes.Buffer
	if err := writeIsolation(&b, nil); err != nil || b.Len() != 0 {
		t.Fatalf("no names: %q, %v", b.String(), err)
	}
	err := writeIsolation(&b, []autoscale.Status{
		{Name: "tiered/slow", State: autoscale.Isolated, Isolations: 2, Until: time.Unix(3600, 0), LastError: "disk gone"},
		{Name: "tiered/fast", State: autoscale.Healthy},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tiered/slow: isolated until 01:00:00 (isolation 2 in a row); last error: disk gone", "tiered/fast: healthy"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("isolation text lacks %q:\n%s", want, b.String())
		}
	}
}
