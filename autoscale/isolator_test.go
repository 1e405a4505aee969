package autoscale

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestIsolatorIsolatesAndRecovers(t *testing.T) {
	now := time.Unix(0, 0)
	var changes []string
	iso := NewIsolator(IsolatorConfig{Threshold: 3, Backoff: time.Second, MaxBackoff: 4 * time.Second,
		Now: func() time.Time { return now },
		OnChange: func(name string, from, to State, _ error) {
			changes = append(changes, fmt.Sprintf("%s:%s->%s", name, from, to))
		}})
	boom := errors.New("tier: disk gone")
	for i := 0; i < 2; i++ {
		if !iso.Allow("slow") {
			t.Fatal("refused before the threshold")
		}
		iso.Report("slow", boom)
	}
	iso.Report("slow", boom)
	if iso.Allow("slow") {
		t.Fatal("allowed while isolated")
	}
	st := iso.Statuses()
	if len(st) != 1 || st[0].State != Isolated || st[0].LastError != boom.Error() || st[0].TotalIsolations != 1 {
		t.Fatalf("status %+v", st)
	}
	// The backoff doubles while probes keep failing, and stops at the cap.
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		now = now.Add(want - time.Millisecond)
		if iso.Allow("slow") {
			t.Fatalf("allowed before a %s backoff ended", want)
		}
		now = now.Add(time.Millisecond)
		if !iso.Allow("slow") {
			t.Fatalf("no probe after a %s backoff", want)
		}
		if iso.Allow("slow") {
			t.Fatal("a second call allowed while probing")
		}
		iso.Report("slow", boom)
	}
	now = now.Add(4 * time.Second)
	if !iso.Allow("slow") {
		t.Fatal("no probe")
	}
	iso.Report("slow", nil)
	if !iso.Allow("slow") || iso.Statuses()[0].State != Healthy || iso.Statuses()[0].Isolations != 0 {
		t.Fatalf("not recovered: %+v", iso.Statuses())
	}
	if changes[0] != "slow:healthy->isolated" || changes[len(changes)-1] != "slow:probing->healthy" {
		t.Fatalf("changes %v", changes)
	}
	// Other names are independent.
	if !iso.Allow("fast") {
		t.Fatal("unrelated name refused")
	}
}

func TestIsolatorSuccessResetsCount(t *testing.T) {
	iso := NewIsolator(IsolatorConfig{Threshold: 2})
	for i := 0; i < 10; i++ {
		iso.Report("x", errors.New("flaky"))
		iso.Report("x", nil)
	}
	if !iso.Allow("x") {
		t.Fatal("alternating failures isolated the name")
	}
}

// The counters tell a part retried hot from one that is not: while a name
// is isolated, refused calls grow and failures grow by one per probe only.
func TestIsolatorCountsFailuresAndRefusals(t *testing.T) {
	now := time.Unix(0, 0)
	iso := NewIsolator(IsolatorConfig{Threshold: 2, Backoff: time.Second, Now: func() time.Time { return now }})
	boom := errors.New("read-only file system")
	for i := 0; i < 2; i++ {
		iso.Allow("t")
		iso.Report("t", boom)
	}
	for i := 0; i < 100; i++ {
		if iso.Allow("t") {
			t.Fatal("allowed while isolated")
		}
	}
	now = now.Add(time.Second)
	if !iso.Allow("t") {
		t.Fatal("no probe after the backoff")
	}
	if iso.Allow("t") {
		t.Fatal("a second call during the probe")
	}
	iso.Report("t", boom)
	st := iso.Statuses()[0]
	if st.TotalFailures != 3 || st.Refused != 101 || st.TotalIsolations != 2 || st.State != Isolated {
		t.Fatalf("status %+v; want 3 failures (2 + one probe), 101 refused, 2 isolations", st)
	}
}
