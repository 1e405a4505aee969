package integration

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"

	"github.com/kubo-highload/highload/plugin/hlstate"
)

// fileSize is the size of each file moved between daemons: 32 leaf blocks
// of Kubo's default 256 KiB chunks.
const fileSize = 8 << 20

// TestTwoDaemonsTransfer moves random files over Bitswap between two of our
// daemons, and between ours (with Bitswap caps set) and stock Kubo in both
// directions.
func TestTwoDaemonsTransfer(t *testing.T) {
	t.Parallel()
	bin := ourBin(t)

	t.Run("ours-ours", func(t *testing.T) {
		t.Parallel()
		defer failOnPanic(t)
		h := newHarness(t, bin)
		a, b := newNode(t, h), newNode(t, h)
		startDaemon(a)
		startDaemon(b)
		connect(t, b, a)
		for _, n := range []*harness.Node{a, b} {
			if bs, _ := stats(t, n).component("bitswap"); bs.Status != hlstate.StatusActive {
				t.Fatalf("node %d: bitswap component: want %q, got %+v", n.ID, hlstate.StatusActive, bs)
			}
		}
		transfer(t, a, b)
	})

	t.Run("ours-stock", func(t *testing.T) {
		t.Parallel()
		defer failOnPanic(t)
		stock := stockBin(t)
		ours := newNode(t, newHarness(t, bin))
		setPlugin(ours, config.Plugin{Config: map[string]any{
			"Bitswap": map[string]any{
				"TaskWorkerCount":            32,
				"MaxOutstandingBytesPerPeer": "32MiB",
				"TargetMessageSize":          "1MiB",
			},
		}})
		plain := newNode(t, newHarness(t, stock))
		// Guard against pointing the stock binary at ours.
		if res := run(plain, cmdTimeout, nil, "stats", "highload"); res.Err == nil {
			t.Fatalf("%s knows `stats highload`: it is not stock Kubo", stock)
		}
		startDaemon(ours)
		startDaemon(plain)
		connect(t, ours, plain)
		bs, _ := stats(t, ours).component("bitswap")
		if bs.Status != hlstate.StatusActive || !strings.Contains(bs.Detail, "TargetMessageSize=1MiB") {
			t.Fatalf("our node: bitswap component: want %q with TargetMessageSize=1MiB applied, got %+v", hlstate.StatusActive, bs)
		}
		t.Run("ours-to-stock", func(t *testing.T) {
			defer failOnPanic(t)
			before := connMgrStat(t, ours).TLSWrites
			if before == nil {
				t.Fatal("our node: `ipfs stats highload connmgr` has no tls_writes: Config.ConnMgr.BatchTLSWrites is not in force")
			}
			transfer(t, ours, plain)
			// Stock Kubo reads our batched TLS (its cat checked the
			// bytes); the records of each write left in fewer syscalls.
			// Writes of one record (a message's last few hundred bytes,
			// small control messages) go straight through, so nearly all
			// of the file, not all of it, is counted.
			after := connMgrStat(t, ours).TLSWrites
			records, writes, sent := after.Records-before.Records, after.Writes-before.Writes, after.Bytes-before.Bytes
			t.Logf("our node sent %d TLS records in %d write syscalls, %d bytes", records, writes, sent)
			if sent < fileSize*9/10 || writes == 0 || writes*2 > records {
				t.Fatalf("our node sent %d bytes in %d TLS records through %d syscalls: want at least %d bytes (90%% of the file), and at most one syscall per two records",
					sent, records, writes, fileSize*9/10)
			}
		})
		t.Run("stock-to-ours", func(t *testing.T) {
			defer failOnPanic(t)
			transfer(t, plain, ours)
		})
	})
}

// connect dials to from from (across harnesses too) and waits until from
// lists to as a peer.
func connect(t *testing.T, from, to *harness.Node) {
	t.Helper()
	if err := from.ConnectAndWait(to, 20*time.Second); err != nil {
		t.Fatalf("connecting node %s to %s: %v", from.Dir, to.Dir, err)
	}
}

// transfer adds fileSize random bytes on src, reads them back on dst, and
// checks that the bytes are identical and came over Bitswap.
func transfer(t *testing.T, src, dst *harness.Node) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	data := make([]byte, fileSize)
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
		byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)}))
	for i := 0; i < len(data); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	t.Logf("%s -> %s: %d random bytes, seed %d", src.IPFSBin, dst.IPFSBin, len(data), seed)

	before := bitswapStat(t, dst)
	cid := strings.TrimSpace(mustRun(t, src, transferTimeout, bytes.NewReader(data), "add", "-Q", "--pin=true").Stdout.String())
	if cid == "" {
		t.Fatalf("ipfs add printed no CID")
	}
	if res := run(dst, cmdTimeout, nil, "block", "stat", "--offline", cid); res.Err == nil {
		t.Fatalf("node %s already has %s before the transfer", dst.Dir, cid)
	}
	got := mustRun(t, dst, transferTimeout, nil, "--timeout=50s", "cat", cid).Stdout.Bytes()
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: cat on the receiver returned %d bytes that differ from the %d added", cid, len(got), len(data))
	}
	after := bitswapStat(t, dst)
	if recv := after.DataReceived - before.DataReceived; recv < uint64(len(data)) {
		t.Errorf("receiver's Bitswap DataReceived grew by %d bytes, want at least %d", recv, len(data))
	}
}

// bitswapStats is the part of `ipfs bitswap stat --enc=json` the tests read.
type bitswapStats struct {
	BlocksReceived  uint64
	DataReceived    uint64
	DupBlksReceived uint64
	BlocksSent      uint64
	DataSent        uint64
}

func bitswapStat(t *testing.T, n *harness.Node) bitswapStats {
	t.Helper()
	res := mustRun(t, n, cmdTimeout, nil, "bitswap", "stat", "--enc=json")
	var s bitswapStats
	if err := json.Unmarshal(res.Stdout.Bytes(), &s); err != nil {
		t.Fatalf("decoding `ipfs bitswap stat --enc=json`: %v\n%s", err, res.Stdout.String())
	}
	return s
}
