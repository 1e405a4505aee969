package tlsbatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	ci "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-accepted
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

func identity(t testing.TB) (ci.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := ci.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// securedPair runs a handshake between a client and a server transport over
// loopback TCP; batched says which ends use this package (the others use
// go-libp2p's TLS transport as it is).
func securedPair(t testing.TB, batchedClient, batchedServer bool) (client, server sec.SecureConn) {
	t.Helper()
	return securedPairOver(t, batchedClient, batchedServer, nil)
}

// securedPairOver is securedPair with the client's TCP connection passed
// through wrap (when not nil) before the handshake.
func securedPairOver(t testing.TB, batchedClient, batchedServer bool, wrap func(net.Conn) net.Conn) (client, server sec.SecureConn) {
	t.Helper()
	ck, cid := identity(t)
	sk, sid := identity(t)
	build := func(k ci.PrivKey, batched bool) sec.SecureTransport {
		if batched {
			tr, err := New(ID, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}
		tr, err := libp2ptls.New(ID, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	ct, st := build(ck, batchedClient), build(sk, batchedServer)
	cc, sc := tcpPair(t)
	if wrap != nil {
		cc = wrap(cc)
	}
	ctx := context.Background()
	type result struct {
		c   sec.SecureConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := st.SecureInbound(ctx, sc, cid)
		done <- result{c, err}
	}()
	client, err := ct.SecureOutbound(ctx, cc, sid)
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if client.RemotePeer() != sid || r.c.RemotePeer() != cid {
		t.Fatalf("peers: client sees %s, server sees %s", client.RemotePeer(), r.c.RemotePeer())
	}
	return client, r.c
}

// TestBatchedTLSSpeaksTLS sends writes of awkward sizes both ways, at the
// same time, between every mix of batched and plain ends, and checks that
// every byte arrives in order, and that a batched end used fewer syscalls
// than records.
func TestBatchedTLSSpeaksTLS(t *testing.T) {
	sizes := []int{1, 12, 16 << 10, 16<<10 + 1, 64<<10 + 12, 300 << 10, 1 << 20}
	var payload []byte
	for _, n := range sizes {
		b := make([]byte, n)
		rand.Read(b)
		payload = append(payload, b...)
	}
	for _, tc := range []struct {
		name           string
		client, server bool
	}{{"both", true, true}, {"client", true, false}, {"server", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			before := ReadStats()
			c, s := securedPair(t, tc.client, tc.server)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			send := func(w io.Writer) {
				defer wg.Done()
				off := 0
				for _, n := range sizes {
					if _, err := w.Write(payload[off : off+n]); err != nil {
						errs <- err
						return
					}
					off += n
				}
			}
			recv := func(r io.Reader) {
				defer wg.Done()
				got := make([]byte, len(payload))
				if _, err := io.ReadFull(r, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, payload) {
					errs <- errors.New("bytes differ")
				}
			}
			wg.Add(4)
			go send(c)
			go send(s)
			go recv(c)
			go recv(s)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			after := ReadStats()
			records, flushes := after.Records-before.Records, after.Writes-before.Writes
			// 1 MiB alone is 64 full records; a batched end writes each
			// Write's records in one syscall per BatchSize.
			if records < 64 {
				t.Fatalf("%d records went through batches, want at least 64", records)
			}
			if flushes*4 > records {
				t.Fatalf("%d flushes for %d records: the records were not batched", flushes, records)
			}
			// Writes over SingleRecord go through batches (twice: both
			// ends send the payload when both are batched).
			var large uint64
			for _, n := range sizes {
				if n > SingleRecord {
					large += uint64(n)
				}
			}
			if sent := after.Bytes - before.Bytes; sent < large {
				t.Fatalf("%d bytes went through batches, want at least %d", sent, large)
			}
		})
	}
}

// failingConn fails every write after the first n.
type failingConn struct {
	net.Conn
	n int
}

var errWrite = errors.New("write refused")

func (f *failingConn) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errWrite
	}
	f.n--
	return len(p), nil
}

// TestFailedFlushFailsEveryLaterWrite: once part of a batch may have
// reached the peer, the stream cannot go on.
func TestFailedFlushFailsEveryLaterWrite(t *testing.T) {
	b := &batchConn{Conn: &failingConn{n: 0}}
	b.begin()
	if _, err := b.Write([]byte("record one")); err != nil {
		t.Fatalf("a batched record failed before the flush: %v", err)
	}
	if err := b.end(); !errors.Is(err, errWrite) {
		t.Fatalf("flush: got %v, want %v", err, errWrite)
	}
	if _, err := b.Write([]byte("record two")); !errors.Is(err, errWrite) {
		t.Fatalf("a write after the failed flush: got %v, want %v", err, errWrite)
	}
	b.begin()
	if _, err := b.Write([]byte("record three")); !errors.Is(err, errWrite) {
		t.Fatalf("a batched write after the failed flush: got %v, want %v", err, errWrite)
	}
	if b.buf != nil {
		t.Fatal("a failed connection holds a buffer")
	}
}

// TestSecureWriteErrorIsReported: a secured write whose flush fails
// reports the error, with nothing counted as written.
func TestSecureWriteErrorIsReported(t *testing.T) {
	c, _ := securedPair(t, true, true)
	bc := c.(*conn)
	bc.batch.mu.Lock()
	bc.batch.Conn = &failingConn{n: 0}
	bc.batch.mu.Unlock()
	n, err := c.Write(make([]byte, 100<<10))
	if !errors.Is(err, errWrite) || n != 0 {
		t.Fatalf("got %d, %v; want 0, %v", n, err, errWrite)
	}
}

// TestSmallWritesGoStraightThrough: a write that fits in one record
// takes no batch (no copy, no pooled buffer); one just over it does.
func TestSmallWritesGoStraightThrough(t *testing.T) {
	c, s := securedPair(t, true, true)
	go io.Copy(io.Discard, s)
	// Past crypto/tls's first 128 KiB, whose records are small.
	if _, err := c.Write(make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	before := ReadStats()
	for _, n := range []int{1, 100, SingleRecord} {
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if after := ReadStats(); after != before {
		t.Fatalf("writes of at most %d bytes went through a batch: %+v, then %+v", SingleRecord, before, after)
	}
	if _, err := c.Write(make([]byte, SingleRecord+1)); err != nil {
		t.Fatal(err)
	}
	if after := ReadStats(); after.Records-before.Records != 2 || after.Writes-before.Writes != 1 {
		t.Fatalf("a write of %d bytes: %d records in %d syscalls, want 2 in 1",
			SingleRecord+1, after.Records-before.Records, after.Writes-before.Writes)
	}
}

// TestIdleConnectionHoldsNoBuffer: the batch buffer goes back to the pool
// when a write ends, so idle connections cost nothing.
func TestIdleConnectionHoldsNoBuffer(t *testing.T) {
	c, s := securedPair(t, true, true)
	go io.Copy(io.Discard, s)
	for _, n := range []int{1, 64 << 10, 1 << 20} {
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		b := c.(*conn).batch
		b.mu.Lock()
		held, batching := b.buf != nil, b.batching
		b.mu.Unlock()
		if held || batching {
			t.Fatalf("after a write of %d bytes: buffer held %v, batching %v", n, held, batching)
		}
	}
}

// processCPU is the CPU time (user and system) the process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSecureWrite sends 64 KiB writes (a full yamux frame) over
// loopback TLS and reads them on the other end, both in this process;
// cpu-ns/op is the CPU time of both ends per frame.
func BenchmarkSecureWrite(b *testing.B) {
	for _, bc := range []struct {
		name    string
		batched bool
	}{{"tls", false}, {"tlsbatch", true}} {
		b.Run(bc.name, func(b *testing.B) {
			c, s := securedPair(b, bc.batched, bc.batched)
			frame := make([]byte, 64<<10+12)
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, s, int64(b.N)*int64(len(frame)))
				done <- err
			}()
			b.SetBytes(int64(len(frame)))
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(frame); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// eventConn records, in order, the closes and write deadlines asked of a
// TCP connection.
type eventConn struct {
	net.Conn
	mu     sync.Mutex
	events []string
}

func (e *eventConn) note(ev string) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

func (e *eventConn) Close() error { e.note("close"); return e.Conn.Close() }

func (e *eventConn) SetWriteDeadline(t time.Time) error {
	e.note("write deadline")
	return e.Conn.SetWriteDeadline(t)
}

func (e *eventConn) SetDeadline(t time.Time) error {
	e.note("deadline")
	return e.Conn.SetDeadline(t)
}

func (e *eventConn) first() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.events) == 0 {
		return ""
	}
	return e.events[0]
}

// TestCloseBreaksABlockedFlush: the peer stops reading, so a write's batch
// blocks in the kernel after crypto/tls's Write has returned. Close must
// close the TCP connection first, as crypto/tls does during its own
// writes, and not queue its close_notify alert behind the blocked batch
// (which crypto/tls would give up on only at the 5 s write deadline it
// sets for that alert: the first thing the TCP connection would see).
func TestCloseBreaksABlockedFlush(t *testing.T) {
	var ev *eventConn
	c, _ := securedPairOver(t, true, true, func(nc net.Conn) net.Conn { // the server end never reads
		ev = &eventConn{Conn: nc}
		return ev
	})
	bc := c.(*conn)
	werr := make(chan error, 1)
	go func() {
		frame := make([]byte, 64<<10) // under BatchSize: sent when the write ends
		for {
			if _, err := c.Write(frame); err != nil {
				werr <- err
				return
			}
		}
	}()
	// Poll until one write has been under way for 20 samples in a row:
	// the socket's buffers are full and its batch is blocked.
	for under := 0; under < 20; {
		select {
		case err := <-werr:
			t.Fatalf("a write failed before Close: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if bc.writing.Load() {
			under++
		} else {
			under = 0
		}
	}
	if got := ev.first(); got != "" {
		t.Fatalf("the TCP connection saw %q before Close", got)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return while a flush was blocked")
	}
	if got := ev.first(); got != "close" {
		t.Fatalf("the TCP connection saw %q first, want close", got)
	}
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("the blocked write returned no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the blocked write did not end after Close")
	}
}
