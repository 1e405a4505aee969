package overload

import (
	"testing"

	"github.com/kubo-highload/highload/bench/internal/workload"
)

func TestRegistersW5W7W8(t *testing.T) {
	for _, id := range []string{"W5", "W7", "W8"} {
		w, ok := workload.Get(id)
		if !ok {
			t.Fatalf("%s is not registered", id)
		}
		if w.Run == nil || w.Name == "" || w.Shape == "" {
			t.Errorf("%s is registered incompletely: %+v", id, w)
		}
	}
}

func TestQuickSizesAreSmaller(t *testing.T) {
	q5, f5 := w5Sizes(true), w5Sizes(false)
	if q5.fileBytes >= f5.fileBytes || q5.fetchTimeout >= f5.fetchTimeout || q5.peers*q5.wants >= f5.peers*f5.wants {
		t.Errorf("W5 quick %+v is not smaller than full %+v", q5, f5)
	}
	if f5.peers != 32 || f5.wants != 1000 || f5.rate != 10 || f5.fileBytes != 64<<20 || f5.chunk != 256<<10 {
		t.Errorf("W5 full size %+v differs from BENCHMARKS.md", f5)
	}
	q7, f7 := w7Sizes(true), w7Sizes(false)
	if q7.n >= f7.n || q7.hold >= f7.hold || q7.defaultN != 0 {
		t.Errorf("W7 quick %+v is not smaller than full %+v", q7, f7)
	}
	if f7.n != 10000 || f7.hold.Seconds() != 60 {
		t.Errorf("W7 full size %+v differs from BENCHMARKS.md", f7)
	}
	// Every step W8 reports a p99 for must be in both sweeps.
	for _, quick := range []bool{true, false} {
		sz := w8Sizes(quick)
		for _, at := range w8P99At {
			found := false
			for _, s := range sz.steps {
				found = found || s == at
			}
			if !found {
				t.Errorf("W8 (quick=%v) sweep %v lacks %d peers", quick, sz.steps, at)
			}
		}
		if sz.inflight != 32 {
			t.Errorf("W8 in flight %d, want 32", sz.inflight)
		}
	}
	if raisedHighWater*2 <= 10000 || raisedMaxFDs >= fdMax {
		t.Error("W7's raised limits do not admit 10,000 connections")
	}
}
