//go:build linux

package integration

import (
	"crypto/rand"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ipfs/kubo/config"
)

// TestTieredFullTmpfsTier puts the fast tier on a real 24 MiB tmpfs and
// writes 48 MiB through the daemon: once the tmpfs is full, flatfs's writes
// fail with ENOSPC and the tiered store puts the blocks in the next tier.
// Every acknowledged block must then be present and hash-valid, before and
// after a restart, `repo verify` clean, and no key in both tiers.
//
// Mounting needs root (CI runs as root); without it the test fails and says
// so, it does not skip.
func TestTieredFullTmpfsTier(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	// The fast tier's capacity is far above the tmpfs, so the mover does
	// not demote before the disk fills: the full disk is what moves the
	// writes.
	n := newTieredNode(t, h, twoTierSpecOnTmpfs, twoTierIdentity)
	fast := filepath.Join(n.Dir, "blocks")
	mountTmpfs(t, fast, "24m")
	startDaemon(n)
	client := &http.Client{Timeout: cmdTimeout}
	acked := map[string][]byte{}
	for i := 0; i < 192; i++ { // 48 MiB of 256 KiB blocks
		b := make([]byte, 256<<10)
		rand.Read(b)
		c, err := blockPut(client, n.APIURL(), b)
		if err != nil {
			t.Fatalf("block put %d with the fast tier full: %v (the write should have gone to the slow tier)", i, err)
		}
		acked[c] = b
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(fast, &fs); err != nil {
		t.Fatal(err)
	}
	if free := fs.Bavail * uint64(fs.Bsize); free > 1<<20 {
		t.Fatalf("the tmpfs still has %d bytes free after 48 MiB: the test did not fill it", free)
	}
	inFast, inSlow := flatfsKeys(t, fast), flatfsKeys(t, filepath.Join(n.Dir, "slowblocks"))
	if len(inFast) == 0 || len(inSlow) == 0 {
		t.Fatalf("blocks: %d in the full fast tier, %d in the slow tier; want both used", len(inFast), len(inSlow))
	}
	t.Logf("48 MiB written: %d blocks on the full tmpfs tier, %d spilled to the slow tier", len(inFast), len(inSlow))
	checkTieredRepo(t, n, acked)

	stopDaemon(t, n)
	startDaemon(n)
	checkTieredRepo(t, n, acked)
	stopDaemon(t, n)
}

// twoTierSpecOnTmpfs is twoTierSpec with capacities far above what the
// tmpfs tests write (1 GiB fast, 10 GiB slow), so the mover never demotes
// and every write to the fast tier is the test's own.
func twoTierSpecOnTmpfs(cfg *config.Config) {
	twoTierSpec(cfg)
	m := cfg.Datastore.Spec["mounts"].([]any)[0].(map[string]any)
	m["tiers"].([]any)[1].(map[string]any)["capacity"] = "1GiB"
	m["tiers"].([]any)[2].(map[string]any)["capacity"] = "10GiB"
}

// mountTmpfs mounts a tmpfs of size (mount's "size=" value) at dir, over
// what init left there (hidden while mounted; the repo has no blocks yet),
// and unmounts it when the test ends. It needs root: without it the test
// fails and says so.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mounting a %s tmpfs at %s (this test needs root): %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
}
