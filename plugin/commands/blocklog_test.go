package commands

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kubo-highload/highload/datastore/blocklog"
)

func TestWriteBlocklog(t *testing.T) {
	var b bytes.Buffer
	if err := writeBlocklog(&b, &BlocklogStatus{}); err != nil || !strings.Contains(b.String(), "none open") {
		t.Fatalf("empty: %q %v", b.String(), err)
	}
	b.Reset()
	s := &BlocklogStatus{Logs: []BlocklogLog{{Path: "/repo/blocklog", Stats: blocklog.Stats{
		Segments: 3, Keys: 1200, DiskBytes: 40 << 20, LiveBytes: 30 << 20, GarbageBytes: 10 << 20,
		Groups: 400, GroupedOps: 1000, MaxGroupOps: 9, GroupBytes: 38 << 20,
		Syncs: 400, SyncTime: 800 * time.Millisecond, InPlaceGroups: 390, PreallocatedBytes: 4 << 20, ZeroFilledBytes: 44 << 20,
		ZeroFill: "paused", RecentGroupBytes: 270 << 10, PreallocMaxGroup: 192 << 10,
		Compactions: 2, CompactedBytes: 5 << 20, TruncatedBytes: 123, OpenTime: 15 * time.Millisecond,
	}}}}
	if err := writeBlocklog(&b, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"blocklog /repo/blocklog", "segments: 3, keys: 1200", "disk: 40 MiB, live: 30 MiB, garbage: 10 MiB",
		"group commits: 400, 1000 records (2.50 per group, largest 9)", "flushes: 400, mean 2ms",
		"zero-filled tail: 390 (4.0 MiB ahead now",
		"zero fill: paused (recent groups 270 KiB, not below 192 KiB)", "compactions: 2, 5.0 MiB freed", "truncated: 123 B",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("blocklog text lacks %q:\n%s", want, b.String())
		}
	}
	for st, want := range map[blocklog.Stats]string{
		{ZeroFill: "on"}:  "zero fill: on (never paused)",
		{ZeroFill: "off"}: "zero fill: off\n",
		{ZeroFill: "on", RecentGroupBytes: 64 << 10, PreallocMaxGroup: 192 << 10}: "zero fill: on (recent groups 64 KiB, below 192 KiB)",
	} {
		var o bytes.Buffer
		if err := writeBlocklog(&o, &BlocklogStatus{Logs: []BlocklogLog{{Path: "/l", Stats: st}}}); err != nil || !strings.Contains(o.String(), want) {
			t.Errorf("zero fill %+v: text lacks %q:\n%s", st, want, o.String())
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if len(line) > 120 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
}
