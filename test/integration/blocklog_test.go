package integration

import (
	"crypto/rand"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-datastore/query"
	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"

	"github.com/kubo-highload/highload/datastore/blocklog"
)

// threeTierSpec makes /blocks memory + a small blocklog fast tier (so the
// mover demotes, and the log compacts, during the ingest) + flatfs as the
// last tier: the single-disk three-tier layout of docs/tiered.md.
func threeTierSpec(cfg *config.Config) {
	m := cfg.Datastore.Spec["mounts"].([]any)[0].(map[string]any)
	m["tiers"] = []any{
		map[string]any{"type": "memory", "capacity": "32MiB"},
		map[string]any{"name": "log", "capacity": "16MiB", "child": map[string]any{
			"type": "blocklog", "path": "blocklog", "segmentSize": "1MiB", "compactInterval": "200ms", "compactRatio": 0.3}},
		map[string]any{"name": "flatfs", "capacity": "1GiB", "child": map[string]any{
			"type": "flatfs", "path": "blocks", "sync": false, "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2"}},
	}
	m["moverInterval"] = "100ms"
	m["moverRate"] = "256MiB"
}

// TestBlocklogTierKill9 loops over kill points: writers post 16-64 KiB
// blocks to a daemon whose /blocks is memory + blocklog + flatfs, with the
// mover demoting out of the log and the log compacting (the log's sync off
// and on, alternately); the daemon gets
// SIGKILL, and after a restart every block whose put returned must be
// present and hash-valid, `ipfs repo verify` clean, and no key both in the
// log and in flatfs.
func TestBlocklogTierKill9(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newTieredNode(t, h, threeTierSpec, `[{"path":"blocklog","type":"blocklog"},`+
		`{"path":"blocks","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2","type":"flatfs"}]`)
	kills := []time.Duration{300 * time.Millisecond, 1200 * time.Millisecond, 2500 * time.Millisecond,
		700 * time.Millisecond, 4 * time.Second, 1800 * time.Millisecond}
	acked := map[string][]byte{}
	for run, after := range kills {
		// Odd runs with the log's sync on: each group then ends in an
		// fdatasync into the segment's zero-filled tail (preallocation),
		// and the restart must take that tail as the log's clean end.
		syncOn := run%2 == 1
		n.UpdateConfig(func(cfg *config.Config) {
			m := cfg.Datastore.Spec["mounts"].([]any)[0].(map[string]any)
			m["tiers"].([]any)[1].(map[string]any)["child"].(map[string]any)["sync"] = syncOn
		})
		startDaemon(n)
		client := &http.Client{Timeout: 30 * time.Second}
		api := n.APIURL()
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					b := make([]byte, (16<<10)<<(i%3))
					rand.Read(b)
					c, err := blockPut(client, api, b)
					if err != nil {
						return // the daemon died mid-request: not acknowledged
					}
					mu.Lock()
					acked[c] = b
					mu.Unlock()
				}
			}()
		}
		time.Sleep(after)
		pid := n.Daemon.Cmd.Process.Pid
		if err := n.Daemon.Cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_, _ = n.Daemon.Cmd.Process.Wait()
		close(stop)
		wg.Wait()
		n.Daemon = nil
		if err := waitFor(exitTimeout, func() (bool, string) { return !pidAlive(pid), "killed daemon alive" }); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: killed after %v; %d blocks acknowledged so far", run+1, after, len(acked))
		checkBlocklogRepo(t, n, acked)
	}
}

// checkBlocklogRepo checks every acknowledged block through the daemon's
// repo (offline), runs repo verify, then opens the log directly and checks
// that no key is both in it and in flatfs.
func checkBlocklogRepo(t *testing.T, n *harness.Node, acked map[string][]byte) {
	t.Helper()
	st := tieredStats(t, n)
	out := mustRun(t, n, 5*time.Minute, nil, "repo", "verify").Stdout.String()
	if !strings.Contains(out, "all blocks validated") {
		t.Fatalf("repo verify after kill: %s", out)
	}
	local := refsLocal(t, n)
	for c := range acked {
		if !local[cidKey(t, c)] {
			t.Fatalf("acknowledged block %s lost", c)
		}
	}
	d, err := blocklog.Open(filepath.Join(n.Dir, "blocklog"), blocklog.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Query(t.Context(), query.Query{KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	flat := flatfsKeys(t, filepath.Join(n.Dir, "blocks"))
	for _, e := range entries {
		if flat[strings.TrimPrefix(e.Key, "/")] {
			t.Fatalf("key %s in both the log and flatfs after reopen", e.Key)
		}
	}
	ls := d.Stats()
	var demoted uint64
	for _, tier := range st.Stats.Tiers {
		demoted += tier.Demotions
	}
	t.Logf("after reopen: %d blocks in the log (%d segments, %d compactions this open), %d in flatfs, none in both; %d demotions",
		len(entries), ls.Segments, ls.Compactions, len(flat), demoted)
}
