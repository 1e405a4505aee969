package autotune

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadSeries reads testdata/<name>: "# note", a header, then
// "seconds,value" lines.
func loadSeries(t *testing.T, name string) []Point {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ps []Point
	sc := bufio.NewScanner(f)
	t0 := time.Unix(1_700_000_000, 0)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "seconds") || line == "" {
			continue
		}
		parts := strings.Split(line, ",")
		s, err1 := strconv.ParseFloat(parts[0], 64)
		v, err2 := strconv.ParseFloat(parts[1], 64)
		if len(parts) != 2 || err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %q", name, line)
		}
		ps = append(ps, Point{T: t0.Add(time.Duration(s * float64(time.Second))), V: v})
	}
	return ps
}

var testRules = []Rule{
	{Metric: "sent", What: "blocks sent per second", Counter: true, Bad: BadWhenLow,
		Advice: "raise Bitswap.EngineBlockstoreWorkerCount"},
	{Metric: "rss", What: "resident memory", Bad: BadWhenHigh,
		Advice: "lower the memory tier's size or set Health.MemoryBudget"},
	{Metric: "fds", What: "open file descriptors", Bad: BadWhenHigh, Limit: 4096,
		Advice: "lower the connection manager's HighWater"},
	{Metric: "p99", What: "p99 latency (ms)", Bad: BadWhenHigh,
		Advice: "lower Bitswap.MaxOutstandingBytesPerPeer"},
	{Metric: "free", What: "free disk space", Bad: BadWhenLow,
		Advice: "run `ipfs repo gc` or move the slow tier to a larger disk"},
}

func TestAnalyzerOnRecordedSeries(t *testing.T) {
	cases := []struct {
		metric, file string
		kinds        []string // expected finding kinds, in order
		word         string   // expected in the message
	}{
		{"sent", "bitswap_blocks_sent_stall.csv", []string{"anomaly"}, "fell to 20"},
		{"sent", "bitswap_blocks_sent_surge.csv", nil, ""},
		{"rss", "rss_leak.csv", []string{"trend"}, "risen steadily"},
		{"fds", "fds_steady.csv", nil, ""},
		{"p99", "p99_ms_spike.csv", []string{"anomaly"}, "rose to 400"},
		{"free", "disk_free_falling.csv", []string{"trend"}, "fallen steadily"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			fs := Analyzer{Rules: testRules}.Analyze(map[string][]Point{c.metric: loadSeries(t, c.file)})
			if len(fs) != len(c.kinds) {
				t.Fatalf("findings %+v, want kinds %v", fs, c.kinds)
			}
			for i, f := range fs {
				if f.Kind != c.kinds[i] || f.Metric != c.metric || f.Advice == "" {
					t.Fatalf("finding %+v, want kind %s on %s with advice", f, c.kinds[i], c.metric)
				}
				if !strings.Contains(f.Message, c.word) {
					t.Fatalf("message %q lacks %q", f.Message, c.word)
				}
			}
		})
	}
}

func TestAnalyzerLimitAndShortSeries(t *testing.T) {
	t0 := time.Unix(0, 0)
	var ps []Point
	for i := 0; i < 20; i++ {
		ps = append(ps, Point{T: t0.Add(time.Duration(i) * time.Second), V: 5000})
	}
	fs := Analyzer{Rules: testRules}.Analyze(map[string][]Point{"fds": ps, "rss": ps[:3]})
	if len(fs) != 1 || fs[0].Kind != "limit" || !strings.Contains(fs[0].Message, "past the limit") {
		t.Fatalf("findings %+v, want one limit finding (rss too short to judge)", fs)
	}
}

func TestAnalyzerMinDelta(t *testing.T) {
	t0 := time.Unix(0, 0)
	var ps []Point
	for i := 0; i < 20; i++ {
		v := 0.010 + 0.001*float64(i%3)
		if i == 19 {
			v = 0.05 // five times the usual, but a twentieth of a core
		}
		ps = append(ps, Point{T: t0.Add(time.Duration(i) * 5 * time.Second), V: v})
	}
	rule := Rule{Metric: "cpu", What: "CPU (cores)", Bad: BadWhenHigh, Advice: "x"}
	if fs := (Analyzer{Rules: []Rule{rule}}).Analyze(map[string][]Point{"cpu": ps}); len(fs) != 1 {
		t.Fatalf("without MinDelta: %+v, want one anomaly", fs)
	}
	rule.MinDelta = 0.25
	if fs := (Analyzer{Rules: []Rule{rule}}).Analyze(map[string][]Point{"cpu": ps}); len(fs) != 0 {
		t.Fatalf("a 0.04-core move reported with MinDelta 0.25: %+v", fs)
	}
}

func TestRatesRestartOnCounterReset(t *testing.T) {
	t0 := time.Unix(0, 0)
	ps := []Point{{t0, 0}, {t0.Add(time.Second), 10}, {t0.Add(2 * time.Second), 3}, {t0.Add(3 * time.Second), 8}}
	r := rates(ps)
	if len(r) != 1 || r[0].V != 5 {
		t.Fatalf("rates %+v, want one rate of 5 after the reset", r)
	}
}
