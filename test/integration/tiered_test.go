package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
	mh "github.com/multiformats/go-multihash"
)

// tieredStatus mirrors `ipfs stats highload tiered --enc=json`; kept apart
// from the Go type so the test checks the wire format.
type tieredStatus struct {
	Open  bool
	Stats struct {
		Tiers []struct {
			Name, Kind             string
			Capacity, Budget, Used uint64
			Blocks                 int64
			Hits, Misses           uint64
			Promotions, Demotions  uint64
			Batches, BatchedPuts   uint64
		}
		IndexedBlocks                                  int64
		IndexBytesBound                                uint64
		MoverBacklog                                   int
		PromotionsDropped                              uint64
		Promotions, Demotions                          uint64
		CompressedValues, CompressionSavedBytes        uint64
		Absent, ResolvedDuplicates, AdmissionsDeferred uint64
	}
}

func tieredStats(t *testing.T, n *harness.Node) *tieredStatus {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "tiered", "--enc=json")
	var s tieredStatus
	dec := json.NewDecoder(strings.NewReader(res.Stdout.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decoding `ipfs stats highload tiered --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return &s
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func addFile(t *testing.T, n *harness.Node, b []byte) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, n, 2*time.Minute, nil, "add", "-Q", writeTemp(t, b)).Stdout.String())
}

// TestTieredDaemon runs a daemon initialised with --profile=highload (the
// /blocks mount becomes a tiered store) through add, restart, cat, verify,
// gc, refs local, repo stat, the stats command and the metrics.
func TestTieredDaemon(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := h.NewNode().Init("--profile=highload")
	n.UpdateConfig(func(cfg *config.Config) {
		cfg.Routing.Type = config.NewOptionalString("none")
		cfg.Bootstrap = []string{}
	})
	blocks := n.ReadConfig().Datastore.Spec["mounts"].([]any)[0].(map[string]any)
	if blocks["mountpoint"] != "/blocks" || blocks["type"] != "tiered" {
		t.Fatalf("profile left /blocks as %v", blocks)
	}
	startDaemon(n)
	random := make([]byte, 3<<20)
	rand.Read(random)
	text := bytes.Repeat([]byte("the tiered store compresses text blocks\n"), 60000)
	cRandom, cText := addFile(t, n, random), addFile(t, n, text)
	cGone := addFile(t, n, []byte("this one will be collected"))

	s := tieredStats(t, n)
	if !s.Open || len(s.Stats.Tiers) != 2 || s.Stats.Tiers[0].Kind != "memory" || s.Stats.Tiers[1].Blocks < 20 {
		t.Fatalf("stats after add: %+v", s)
	}
	if s.Stats.CompressedValues == 0 || s.Stats.CompressionSavedBytes < 1<<20 {
		t.Fatalf("text was not compressed: %+v", s.Stats)
	}
	if s.Stats.Tiers[1].Batches == 0 {
		t.Fatal("no group commit counted")
	}
	text1 := mustRun(t, n, cmdTimeout, nil, "stats", "highload", "tiered").Stdout.String()
	for _, want := range []string{"tiered datastore", "memory", "flatfs", "compression:", "location index:"} {
		if !strings.Contains(text1, want) {
			t.Fatalf("text output lacks %q:\n%s", want, text1)
		}
	}
	if m := withPrefix(metrics(t, n), "highload_tiered_blocks{"); len(m) != 2 {
		t.Fatalf("highload_tiered_blocks samples: %v", m)
	}

	stopDaemon(t, n)
	startDaemon(n)
	for c, want := range map[string][]byte{cRandom: random, cText: text} {
		got := mustRun(t, n, time.Minute, nil, "cat", c).Stdout.Bytes()
		if !bytes.Equal(got, want) {
			t.Fatalf("cat %s after restart: %d bytes differ from the %d added", c, len(got), len(want))
		}
	}
	// A block is cached once read memoryAdmitReads (2) times plus once per
	// 64 KiB (256 KiB chunks: 6), so by the 7th read of the file its
	// blocks hit the memory tier; before that, misses are deferred.
	if s := tieredStats(t, n); s.Stats.AdmissionsDeferred == 0 {
		t.Fatalf("first reads after a restart were cached at once: %+v", s.Stats)
	}
	for i := 0; ; i++ {
		if s := tieredStats(t, n); s.Stats.Tiers[0].Hits > 0 {
			break
		} else if i == 7 {
			t.Fatalf("no memory-tier hit after 7 re-reads: %+v", s.Stats.Tiers[0])
		}
		mustRun(t, n, time.Minute, nil, "cat", cText)
	}
	if out := mustRun(t, n, 2*time.Minute, nil, "repo", "verify").Stdout.String(); !strings.Contains(out, "all blocks validated") {
		t.Fatalf("repo verify: %s", out)
	}
	before := refsLocal(t, n)
	mustRun(t, n, cmdTimeout, nil, "pin", "rm", cGone)
	mustRun(t, n, time.Minute, nil, "repo", "gc")
	after := refsLocal(t, n)
	if after[cidKey(t, cGone)] || !after[cidKey(t, cRandom)] || !after[cidKey(t, cText)] || len(after) >= len(before) {
		t.Fatalf("gc: %d refs before, %d after; collected block still there: %v", len(before), len(after), after[cidKey(t, cGone)])
	}
	st := mustRun(t, n, cmdTimeout, nil, "repo", "stat").Stdout.String()
	if !strings.Contains(st, fmt.Sprintf("NumObjects: %d", len(after))) {
		t.Fatalf("repo stat disagrees with refs local (%d):\n%s", len(after), st)
	}
	stopDaemon(t, n)
}

// cidKey normalises a CID to its multihash, as `refs local` prints CIDv1 raw.
func cidKey(t *testing.T, s string) string {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c.Hash().B58String()
}

func refsLocal(t *testing.T, n *harness.Node) map[string]bool {
	t.Helper()
	out := mustRun(t, n, time.Minute, nil, "refs", "local").Stdout.String()
	m := map[string]bool{}
	for _, l := range strings.Fields(out) {
		m[cidKey(t, l)] = true
	}
	return m
}

// TestTieredBadSpecRefused: a bad tiered spec stops the repo from opening,
// and the error names the field.
func TestTieredBadSpecRefused(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := h.NewNode().Init("--profile=highload")
	n.UpdateConfig(func(cfg *config.Config) {
		m := cfg.Datastore.Spec["mounts"].([]any)[0].(map[string]any)
		m["tiers"].([]any)[1].(map[string]any)["capacity"] = "1KiB"
	})
	if stderr := mustFail(t, n, "repo", "stat"); !strings.Contains(stderr, "tiers[1].capacity") {
		t.Fatalf("error does not name tiers[1].capacity:\n%s", stderr)
	}
}

// blockPut posts b to the daemon's /api/v0/block/put and returns the CID.
func blockPut(client *http.Client, api string, b []byte) (string, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("data", "b")
	fw.Write(b)
	w.Close()
	resp, err := client.Post(api+"/api/v0/block/put", w.FormDataContentType(), &body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("block/put: %s: %s", resp.Status, out)
	}
	var r struct{ Key string }
	if err := json.Unmarshal(out, &r); err != nil {
		return "", err
	}
	return r.Key, nil
}

// twoTierSpec makes /blocks a tiered store with a small fast flatfs tier
// (so the mover demotes during the ingest) over a slow flatfs tier.
func twoTierSpec(cfg *config.Config) {
	m := cfg.Datastore.Spec["mounts"].([]any)[0].(map[string]any)
	m["tiers"] = []any{
		map[string]any{"type": "memory", "capacity": "32MiB"},
		map[string]any{"name": "fast", "capacity": "16MiB", "child": map[string]any{
			"type": "flatfs", "path": "blocks", "sync": true, "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2"}},
		map[string]any{"name": "slow", "capacity": "1GiB", "child": map[string]any{
			"type": "flatfs", "path": "slowblocks", "sync": true, "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2"}},
	}
	m["moverInterval"] = "100ms"
	m["moverRate"] = "256MiB"
}

// newTieredNode inits a highload repo for the kill and full-disk tests: no
// routing, no bootstrap, edit applied to the config, and datastore_spec
// rewritten to the /blocks tiers' identity (the JSON list of the durable
// children's DiskSpecs). init wrote plain flatfs's identity; the repo has no
// blocks yet, so writing the new one is safe.
func newTieredNode(t *testing.T, h *harness.Harness, edit func(*config.Config), tiersIdentity string) *harness.Node {
	t.Helper()
	n := h.NewNode().Init("--profile=highload")
	n.UpdateConfig(func(cfg *config.Config) {
		cfg.Routing.Type = config.NewOptionalString("none")
		cfg.Bootstrap = []string{}
		edit(cfg)
	})
	spec := `{"mounts":[{"mountpoint":"/blocks","tiers":` + tiersIdentity + `,"type":"tiered"},` +
		`{"mountpoint":"/","path":"datastore","type":"levelds"}],"type":"mount"}`
	if err := os.WriteFile(filepath.Join(n.Dir, "datastore_spec"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// twoTierIdentity is twoTierSpec's datastore_spec tiers.
const twoTierIdentity = `[{"path":"blocks","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2","type":"flatfs"},` +
	`{"path":"slowblocks","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2","type":"flatfs"}]`

// TestTieredKill9 loops over kill points: writers post blocks to a daemon on
// a two-tier store whose mover is busy demoting, the daemon gets SIGKILL,
// and after a restart every block whose put returned must be present and
// hash-valid, `ipfs repo verify` clean, and no key in both tiers.
func TestTieredKill9(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newTieredNode(t, h, twoTierSpec, twoTierIdentity)

	kills := []time.Duration{300 * time.Millisecond, 800 * time.Millisecond, 1500 * time.Millisecond,
		2500 * time.Millisecond, 4 * time.Second, 1100 * time.Millisecond, 1900 * time.Millisecond, 3200 * time.Millisecond}
	acked := map[string][]byte{}
	for run, after := range kills {
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
				for {
					select {
					case <-stop:
						return
					default:
					}
					b := make([]byte, 256<<10)
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
		checkTieredRepo(t, n, acked)
	}
	// A kill rarely lands between a move's copy and its delete; make that
	// state by hand (a fast-tier block copied, synced, into the slow tier's
	// shard) and check the reopen keeps exactly one copy.
	fastDir, slowDir := filepath.Join(n.Dir, "blocks"), filepath.Join(n.Dir, "slowblocks")
	var src string
	_ = filepath.WalkDir(fastDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && src == "" && !d.IsDir() && strings.HasSuffix(p, ".data") {
			src = p
		}
		return nil
	})
	if src == "" {
		t.Fatal("no block in the fast tier to duplicate")
	}
	rel, _ := filepath.Rel(fastDir, src)
	dst := filepath.Join(slowDir, rel)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := tieredStats(t, n); st.Stats.ResolvedDuplicates != 1 {
		t.Fatalf("reopen resolved %d duplicates, want 1", st.Stats.ResolvedDuplicates)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("the slower, equal copy %s survived: %v", dst, err)
	}
	checkTieredRepo(t, n, acked)
}

// checkTieredRepo opens the repo offline (Open resolves duplicates), checks
// every acknowledged block, runs repo verify, and checks that no key is in
// both flatfs tiers.
func checkTieredRepo(t *testing.T, n *harness.Node, acked map[string][]byte) {
	t.Helper()
	// The first open after the kill resolves keys a move left in two tiers.
	st := tieredStats(t, n)
	t.Logf("reopen resolved %d key(s) found in two tiers", st.Stats.ResolvedDuplicates)
	out := mustRun(t, n, 5*time.Minute, nil, "repo", "verify").Stdout.String()
	if !strings.Contains(out, "all blocks validated") {
		t.Fatalf("repo verify after kill: %s", out)
	}
	local := refsLocal(t, n)
	for c, b := range acked {
		k := cidKey(t, c)
		if !local[k] {
			t.Fatalf("acknowledged block %s lost", c)
		}
		dec, _ := cid.Decode(c)
		sum, _ := mh.Sum(b, mh.SHA2_256, -1)
		if !bytes.Equal(sum, dec.Hash()) {
			t.Fatalf("test bug: %s is not the hash of its data", c)
		}
	}
	fast, slow := flatfsKeys(t, filepath.Join(n.Dir, "blocks")), flatfsKeys(t, filepath.Join(n.Dir, "slowblocks"))
	for k := range fast {
		if slow[k] {
			t.Fatalf("key %s in both tiers after reopen", k)
		}
	}
	t.Logf("after reopen: %d blocks in the fast tier, %d in the slow tier, none in both", len(fast), len(slow))
}

func flatfsKeys(t *testing.T, dir string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".data") {
			m[strings.TrimSuffix(filepath.Base(p), ".data")] = true
		}
		return nil
	})
	return m
}

// TestTieredAdoptsFlatfsRepo follows docs/migration.md: a repo made by
// Kubo's default init, with blocks in flatfs, becomes a tiered store by
// `ipfs config profile apply highload`; datastore_spec does not change, no
// block is copied, and every block is still there and valid.
func TestTieredAdoptsFlatfsRepo(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	if typ := n.ReadConfig().Datastore.Spec["mounts"].([]any)[0].(map[string]any)["type"]; typ != "flatfs" {
		t.Fatalf("default init mounted %v at /blocks", typ)
	}
	data := make([]byte, 2<<20)
	rand.Read(data)
	c := addFile(t, n, data)
	specBefore, err := os.ReadFile(filepath.Join(n.Dir, "datastore_spec"))
	if err != nil {
		t.Fatal(err)
	}
	filesBefore := flatfsKeys(t, filepath.Join(n.Dir, "blocks"))

	mustRun(t, n, cmdTimeout, nil, "config", "profile", "apply", "highload")
	if typ := n.ReadConfig().Datastore.Spec["mounts"].([]any)[0].(map[string]any)["type"]; typ != "tiered" {
		t.Fatalf("profile left /blocks as %v", typ)
	}
	s := tieredStats(t, n)
	if !s.Open || s.Stats.Tiers[1].Blocks != int64(len(filesBefore)) {
		t.Fatalf("tiered store sees %d blocks, flatfs holds %d", s.Stats.Tiers[1].Blocks, len(filesBefore))
	}
	specAfter, _ := os.ReadFile(filepath.Join(n.Dir, "datastore_spec"))
	if !bytes.Equal(specBefore, specAfter) {
		t.Fatalf("datastore_spec changed:\n%s\n%s", specBefore, specAfter)
	}
	if out := mustRun(t, n, 2*time.Minute, nil, "repo", "verify").Stdout.String(); !strings.Contains(out, "all blocks validated") {
		t.Fatalf("repo verify: %s", out)
	}
	if got := mustRun(t, n, time.Minute, nil, "cat", c).Stdout.Bytes(); !bytes.Equal(got, data) {
		t.Fatal("file differs after adoption")
	}
	filesAfter := flatfsKeys(t, filepath.Join(n.Dir, "blocks"))
	for k := range filesBefore {
		if !filesAfter[k] {
			t.Fatalf("block file %s gone after adoption", k)
		}
	}
}
