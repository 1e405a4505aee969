package blocklog

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// The child side of TestKill9: with BLOCKLOG_CRASH_DIR set, the test binary
// writes to the store with several writers (puts, batches and deletes)
// forever, printing each acknowledged write on stdout, until its parent
// kills it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BLOCKLOG_CRASH_DIR"); dir != "" {
		crashChild(dir, os.Getenv("BLOCKLOG_CRASH_SYNC") == "1")
		return
	}
	os.Exit(m.Run())
}

func crashVal(n, round int) []byte {
	size := 1000 + (n*37)%20000
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, uint64(n)<<8|uint64(round))
	for i := 8; i < size; i++ {
		b[i] = byte(n + round + i)
	}
	return b
}

func crashChild(dir string, syncOn bool) {
	d, err := Open(dir, Options{Sync: syncOn, SegmentSize: 2 << 20, CompactRatio: 0.3, CompactInterval: 50 * time.Millisecond})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ack := func(s string) {
		mu.Lock()
		out.WriteString(s + "\n")
		out.Flush()
		mu.Unlock()
	}
	base, _ := strconv.Atoi(os.Getenv("BLOCKLOG_CRASH_BASE"))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				n := base + w*1_000_000 + i
				switch {
				case i%10 == 9: // a batch of 3 puts and the delete of an older key
					b, _ := d.Batch(ctx)
					for j := range 3 {
						b.Put(ctx, key(n*10+j), crashVal(n*10+j, 0))
					}
					b.Delete(ctx, key(n-8))
					ack(fmt.Sprintf("I %d", n-8)) // intent: the delete may land from now on
					if b.Commit(ctx) == nil {
						ack(fmt.Sprintf("B %d %d", n, n-8))
					}
				case i%10 == 4:
					ack(fmt.Sprintf("I %d", n-3))
					if d.Delete(ctx, key(n-3)) == nil {
						ack(fmt.Sprintf("D %d", n-3))
					}
				default:
					if d.Put(ctx, key(n), crashVal(n, 0)) == nil {
						ack(fmt.Sprintf("P %d", n))
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestKill9 starts a writer child, kills it with SIGKILL after a number of
// acknowledged writes (a different kill point each round, sync=false and
// sync=true), reopens the log and checks that every acknowledged write is
// visible: puts present with their exact value, deletes absent, each batch
// all there. The log accumulates over the rounds, so later rounds also
// recover logs with several segments, hints and compactions.
func TestKill9(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	points := []int{1, 40, 250, 900, 2000, 120, 3000, 600}
	present := map[int]bool{} // key number -> must be present (true) or absent (false)
	for round, point := range points {
		syncOn := round%2 == 1
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "BLOCKLOG_CRASH_DIR="+dir,
			"BLOCKLOG_CRASH_BASE="+strconv.Itoa((round+1)*100_000_000), "BLOCKLOG_CRASH_SYNC="+map[bool]string{true: "1"}[syncOn])
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		// present holds what the acknowledged writes decided; a key whose
		// delete was started but not yet acknowledged may be either way,
		// so it leaves the model until the delete's ack.
		apply := func(line string) {
			f := strings.Fields(line)
			num := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
			switch f[0] {
			case "P":
				present[num(1)] = true
			case "I":
				delete(present, num(1))
			case "D":
				present[num(1)] = false
			case "B":
				for j := range 3 {
					present[num(1)*10+j] = true
				}
				present[num(2)] = false
			default:
				t.Fatalf("child: %s", line)
			}
		}
		acks := 0
		for acks < point && sc.Scan() {
			apply(sc.Text())
			acks++
		}
		// Kill the child we started, by its PID.
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		// Lines printed before the kill landed are acknowledged too.
		for sc.Scan() {
			apply(sc.Text())
		}
		cmd.Wait()
		if acks < point {
			t.Fatalf("round %d: child stopped after %d acks", round, acks)
		}
		d := open(t, dir, Options{SegmentSize: 2 << 20})
		for n, want := range present {
			v, err := d.Get(ctx, key(n))
			if want {
				if err != nil {
					t.Fatalf("round %d (kill after %d acks, sync=%v): acknowledged put %d lost: %v", round, point, syncOn, n, err)
				}
				if string(v) != string(crashVal(n, 0)) {
					t.Fatalf("round %d: key %d has a wrong value", round, n)
				}
			} else if err != ds.ErrNotFound {
				t.Fatalf("round %d: acknowledged delete of %d not visible: %v", round, n, err)
			}
		}
		st := d.Stats()
		t.Logf("round %d: killed after %d acks (sync=%v); reopened %d segments, %d keys, truncated %d bytes, open %s",
			round, point, syncOn, st.Segments, st.Keys, st.TruncatedBytes, st.OpenTime)
		d.Close()
	}
}
