package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/kubo/config"
)

// TestBadConfigRefusesDaemon: a bad plugin config stops `ipfs daemon` (and
// other commands) with a message naming the key; `ipfs config` stays usable
// to fix it.
func TestBadConfigRefusesDaemon(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)

	for _, tc := range []struct {
		name    string
		bitswap map[string]any
		want    []string
	}{
		{
			name:    "bad size",
			bitswap: map[string]any{"MaxOutstandingBytesPerPeer": "12QB"},
			want:    []string{`highload: Config.Bitswap.MaxOutstandingBytesPerPeer: "12QB" is not a size`},
		},
		{
			name:    "unknown key",
			bitswap: map[string]any{"MaxOutstandingBytes": "1MiB"},
			want:    []string{`highload: Config.Bitswap.MaxOutstandingBytes: unknown key`, `did you mean "MaxOutstandingBytesPerPeer"`},
		},
		{
			name:    "out of range",
			bitswap: map[string]any{"TaskWorkerCount": 0},
			want:    []string{`highload: Config.Bitswap.TaskWorkerCount: 0 is out of range`},
		},
		{
			name: "all at once",
			bitswap: map[string]any{
				"MaxOutstandingBytesPerPeer": "12QB",
				"MaxOutstandingBytes":        "1MiB",
				"TaskWorkerCount":            0,
			},
			want: []string{`"12QB" is not a size`, `did you mean "MaxOutstandingBytesPerPeer"`, `0 is out of range`},
		},
	} {
		// Sequential: the cases share one repo, and each refused start is cheap.
		t.Run(tc.name, func(t *testing.T) {
			defer failOnPanic(t)
			setPlugin(n, config.Plugin{Config: map[string]any{"Bitswap": tc.bitswap}})
			stderr := mustFail(t, n, "daemon")
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("ipfs daemon stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}

	t.Run("ipfs config still works and fixes it", func(t *testing.T) {
		defer failOnPanic(t)
		setPlugin(n, config.Plugin{Config: map[string]any{"Bitswap": map[string]any{"TaskWorkerCount": 0}}})
		if stderr := mustFail(t, n, "stats", "highload"); !strings.Contains(stderr, "out of range") {
			t.Errorf("ipfs stats highload with a bad config: stderr lacks the reason:\n%s", stderr)
		}
		res := mustRun(t, n, cmdTimeout, nil, "config", "--json", "Plugins.Plugins.highload.Config.Bitswap.TaskWorkerCount", "16")
		if !strings.Contains(res.Stderr.String(), "WARNING: highload:") {
			t.Errorf("ipfs config with a bad plugin config: want a WARNING on stderr, got:\n%s", res.Stderr.String())
		}
		s := stats(t, n)
		b, _ := s.Config["Bitswap"].(map[string]any)
		if !s.Loaded || b["TaskWorkerCount"] != float64(16) {
			t.Errorf("after the fix: want Loaded=true TaskWorkerCount=16, got Loaded=%v Bitswap=%v", s.Loaded, s.Config["Bitswap"])
		}
	})
}

// TestTieredSpecRefused: a Datastore.Spec with a bad `tiered` mount (here:
// no tiers) is refused by every command that opens the repo, whatever
// datastore_spec says: Kubo parses Datastore.Spec (and so calls our parser)
// before it compares the disk spec.
func TestTieredSpecRefused(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	const want = `tiered: tiers: want a non-empty list of tiers`
	h := newHarness(t, ourBin(t))

	// Kubo v0.43 writes flat mounts: the /blocks mount entry is itself the
	// flatfs config. Older repos wrap each child in a "measure" datastore.
	flat := map[string]any{"mountpoint": "/blocks", "type": "tiered"}
	measured := map[string]any{"mountpoint": "/blocks", "type": "measure", "prefix": "tiered.datastore",
		"child": map[string]any{"type": "tiered"}}
	for _, tc := range []struct {
		name     string
		mount    map[string]any
		diskSpec string // written to datastore_spec when not empty
	}{
		{name: "flat mount, datastore_spec unchanged", mount: flat},
		{name: "measure child, datastore_spec unchanged", mount: measured},
		{name: "flat mount, datastore_spec rewritten", mount: flat,
			diskSpec: `{"mounts":[{"mountpoint":"/blocks","type":"tiered"},{"mountpoint":"/","path":"datastore","type":"levelds"}],"type":"mount"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer failOnPanic(t)
			n := newNode(t, h)
			replaced := false
			n.UpdateConfig(func(cfg *config.Config) {
				mounts, _ := cfg.Datastore.Spec["mounts"].([]any)
				for i, m := range mounts {
					if mm, _ := m.(map[string]any); mm["mountpoint"] == "/blocks" {
						mounts[i] = tc.mount
						replaced = true
					}
				}
			})
			if !replaced {
				t.Fatalf("no /blocks mount in Datastore.Spec: %v", n.ReadConfig().Datastore.Spec)
			}
			if tc.diskSpec != "" {
				if err := os.WriteFile(filepath.Join(n.Dir, "datastore_spec"), []byte(tc.diskSpec), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"repo", "stat"}, {"stats", "highload"}, {"daemon"}} {
				stderr := mustFail(t, n, args...)
				if !strings.Contains(stderr, want) {
					t.Errorf("ipfs %s: stderr lacks %q:\n%s", strings.Join(args, " "), want, stderr)
				}
			}
		})
	}
}
