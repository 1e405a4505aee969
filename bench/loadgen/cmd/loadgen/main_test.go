package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/kubo-highload/highload/bench/loadgen"
)

func target(t *testing.T) (host.Host, string) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, h.Addrs()[0].String() + "/p2p/" + h.ID().String()
}

// events runs the command in the background and returns its output lines
// as they come, and a function returning run's error once it is done.
func events(ctx context.Context, args ...string) (<-chan Event, func() error) {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw)
		pw.Close()
		errc <- err
	}()
	out := make(chan Event, 8)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev Event
			var raw struct {
				Event
				Result json.RawMessage `json:"result"`
			}
			if json.Unmarshal(sc.Bytes(), &raw) == nil {
				ev = raw.Event
				ev.Result = raw.Result
			}
			out <- ev
		}
	}()
	return out, func() error { return <-errc }
}

func next(t *testing.T, evs <-chan Event, want string) json.RawMessage {
	t.Helper()
	select {
	case ev, ok := <-evs:
		if !ok {
			t.Fatalf("output ended before %q", want)
		}
		if ev.Event != want {
			t.Fatalf("event %q, want %q", ev.Event, want)
		}
		if ev.SelfRSSMB <= 0 {
			t.Errorf("event %q without the generator's RSS", want)
		}
		return ev.Result.(json.RawMessage)
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q event within 30s", want)
	}
	return nil
}

func TestConnsHoldsUntilSignalled(t *testing.T) {
	h, addr := target(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, wait := events(ctx, "conns", "-target", addr, "-n", "12", "-max-hold", "1m")
	var est loadgen.ConnsEvent
	if err := json.Unmarshal(next(t, evs, "established"), &est); err != nil {
		t.Fatal(err)
	}
	if est.Established != 12 || est.Held != 12 || est.Requested != 12 {
		t.Fatalf("established event %+v", est)
	}
	// Held until the signal: nothing to poll for here, since the check is
	// that nothing happens; 200 ms of no change is the evidence.
	time.Sleep(200 * time.Millisecond)
	if got := len(h.Network().Peers()); got != 12 {
		t.Fatalf("target sees %d peers during the hold", got)
	}
	_ = h.Network().ClosePeer(h.Network().Peers()[0]) // the target trims one
	// The generator's process sees the close asynchronously and exposes no
	// state to poll before its result; give it a moment.
	time.Sleep(200 * time.Millisecond)
	cancel() // what SIGINT does
	var res loadgen.ConnsEvent
	if err := json.Unmarshal(next(t, evs, "result"), &res); err != nil {
		t.Fatal(err)
	}
	if res.Held != 11 || res.Trimmed != 1 || res.HeldSeconds <= 0 {
		t.Fatalf("result %+v, want 11 held and 1 trimmed", res)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.Network().Peers()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(h.Network().Peers()); got != 0 {
		t.Fatalf("%d connections left open after the command returned", got)
	}
}

func TestConnsReleasesAfterMaxHold(t *testing.T) {
	_, addr := target(t)
	start := time.Now()
	evs, wait := events(context.Background(), "conns", "-target", addr, "-n", "2", "-max-hold", "300ms")
	next(t, evs, "established")
	next(t, evs, "result")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("took %s with -max-hold 300ms", el)
	}
}

func TestRateReadsCIDFile(t *testing.T) {
	_, addr := target(t)
	dir := t.TempDir()
	cids := loadgen.SeededCIDs(7, 3)
	var lines []string
	for _, c := range cids {
		lines = append(lines, c.String())
	}
	path := filepath.Join(dir, "cids.txt")
	if err := os.WriteFile(path, []byte("\n"+strings.Join(lines, "\n")+"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readCIDs(path)
	if err != nil || len(got) != 3 || !got[2].Equals(cids[2]) {
		t.Fatalf("readCIDs = %v, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("not-a-cid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"rate", "-target", addr, "-cids", path}, io.Discard); err == nil {
		t.Fatal("rate accepted a file with a bad CID")
	}
}

func TestUsageErrors(t *testing.T) {
	_, addr := target(t)
	for _, args := range [][]string{
		nil,
		{"bogus", "-target", addr},
		{"flood"}, // no target
		{"flood", "-target", "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"},
		{"flood", "-target", addr, "extra"},
		{"flood", "-target", addr, "-duration", "2h"},
		{"conns", "-target", addr, "-max-hold", "0s"},
		{"rate", "-target", addr}, // no -cids
	} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
