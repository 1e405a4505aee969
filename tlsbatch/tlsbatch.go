// Package tlsbatch wraps go-libp2p's TLS security transport so that the TLS
// records of one write leave the host in one write syscall.
//
// The model: crypto/tls cuts a write into records of at most 16 KiB and
// hands each record to the connection below with its own Write, so a
// 64 KiB yamux frame costs five write syscalls (four full records and one
// for the frame's last bytes), a 256 KiB block twenty. The transport puts a
// batching layer between crypto/tls and the TCP connection: while a write
// of the secured connection is under way, the records crypto/tls produces
// are copied into one pooled buffer, which is written when that write
// returns (or when it fills); a write that fits in one record goes
// straight through. The bytes on the wire are exactly TLS's; only
// their grouping into syscalls changes, so the peer sees the same protocol
// (`/tls/1.0.0`) and needs nothing.
//
// Writes crypto/tls makes on its own (the handshake, alerts, a key update
// answered from a read) go through at once when no write is under way, and
// into the batch, in order, when one is. The buffer is taken from a pool
// when a batch starts and given back when it is flushed, so an idle
// connection holds none. A flush that fails leaves the connection failed:
// every later write returns the same error, since the peer may have got
// part of a record. A Close while a batch is being sent closes the TCP
// connection first, as crypto/tls does when Close meets one of its own
// writes, so that a peer that stopped reading cannot hold Close.
package tlsbatch

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	ci "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// ID is the protocol the transport speaks: go-libp2p's TLS, unchanged.
const ID = libp2ptls.ID

// BatchSize is the most bytes a batch holds before it is written: a 64 KiB
// yamux frame (the largest go-libp2p's yamux sends) in 16 KiB records with
// their headers and tags fits, with room to spare.
const BatchSize = 128 << 10

// Stats counts what the batching layer did, over all connections of all
// transports of the process.
type Stats struct {
	// Records is the number of writes crypto/tls made into a batch (one
	// per TLS record).
	Records uint64 `json:"records"`
	// Writes is the number of write syscalls those records took.
	Writes uint64 `json:"writes"`
	// Bytes is the number of bytes written through batches.
	Bytes uint64 `json:"bytes"`
}

var stats struct{ records, writes, bytes atomic.Uint64 }

// ReadStats returns the process-wide counters.
func ReadStats() Stats {
	return Stats{Records: stats.records.Load(), Writes: stats.writes.Load(), Bytes: stats.bytes.Load()}
}

// Transport is go-libp2p's TLS transport with the batching layer under
// each of its connections.
type Transport struct {
	inner *libp2ptls.Transport
}

var _ sec.SecureTransport = (*Transport)(nil)

// New builds the transport with the signature go-libp2p's libp2p.Security
// expects of a security constructor (the same as libp2ptls.New).
func New(id protocol.ID, key ci.PrivKey, muxers []tptu.StreamMuxer) (*Transport, error) {
	inner, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &Transport{inner: inner}, nil
}

// ID returns the protocol ID the transport was built with.
func (t *Transport) ID() protocol.ID { return t.inner.ID() }

// SecureInbound runs the TLS handshake as the server over a batching
// layer on insecure.
func (t *Transport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return secure(ctx, insecure, p, t.inner.SecureInbound)
}

// SecureOutbound runs the TLS handshake as the client over a batching
// layer on insecure.
func (t *Transport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return secure(ctx, insecure, p, t.inner.SecureOutbound)
}

// secure runs handshake (the inner transport's inbound or outbound side)
// over a batching layer on insecure.
func secure(ctx context.Context, insecure net.Conn, p peer.ID,
	handshake func(context.Context, net.Conn, peer.ID) (sec.SecureConn, error)) (sec.SecureConn, error) {
	b := &batchConn{Conn: insecure}
	sc, err := handshake(ctx, b, p)
	if err != nil {
		return nil, err
	}
	return &conn{SecureConn: sc, batch: b}, nil
}

// conn is a secured connection whose writes are batched below TLS.
type conn struct {
	sec.SecureConn
	batch   *batchConn
	writeMu sync.Mutex
	writing atomic.Bool // a Write is under way, its flush included
}

// SingleRecord is the most a write may hold to go straight through
// crypto/tls without a batch: the largest TLS record's payload. Such a
// write is one record (or, in the first 128 KiB a connection sends, a few
// small ones: crypto/tls's dynamic record sizing), so a batch would only
// add a copy and take a pooled 128 KiB buffer. Batching every write made
// W5's priority fetch slower under the flood (docs/connmgr.md).
const SingleRecord = 16 << 10

// Write encrypts p and sends all its records with as few syscalls as the
// batch size allows; a write of at most SingleRecord bytes goes straight
// through.
func (c *conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if len(p) <= SingleRecord {
		return c.SecureConn.Write(p)
	}
	c.writing.Store(true)
	defer c.writing.Store(false)
	c.batch.begin()
	n, err := c.SecureConn.Write(p)
	if ferr := c.batch.end(); ferr != nil && err == nil {
		return 0, ferr
	}
	return n, err
}

// Close closes the connection. crypto/tls treats a Close during a Write as
// a teardown: it closes the TCP connection at once rather than queue its
// close_notify alert behind a write that may be blocked on a peer that
// stopped reading. Its Write has returned by the time the batch is sent,
// so Close does the same here while a write's batch is being sent.
func (c *conn) Close() error {
	if c.writing.Load() {
		_ = c.batch.Close()
	}
	return c.SecureConn.Close()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, BatchSize); return &b }}

// batchConn sits between crypto/tls and the TCP connection.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      *[]byte // from bufPool while a batch holds bytes
	err      error   // a failed flush: the stream is broken from here on

	closeOnce sync.Once
	closeErr  error
}

// Close closes the TCP connection once; it takes no lock, so that it
// breaks a flush blocked in the kernel.
func (b *batchConn) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.Conn.Close() })
	return b.closeErr
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// end writes what the batch holds and stops batching.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	return b.flushLocked()
}

// Write is called by crypto/tls, once per record.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.batching {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		return b.Conn.Write(p)
	}
	if b.buf != nil && len(*b.buf)+len(p) > BatchSize {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > BatchSize {
		return b.Conn.Write(p)
	}
	if b.buf == nil {
		b.buf = bufPool.Get().(*[]byte)
	}
	*b.buf = append(*b.buf, p...)
	stats.records.Add(1)
	return len(p), nil
}

// flushLocked writes the batch, gives its buffer back, and keeps a write
// error for every later write.
func (b *batchConn) flushLocked() error {
	if b.err != nil {
		return b.err
	}
	if b.buf == nil {
		return nil
	}
	buf := b.buf
	b.buf = nil
	_, err := b.Conn.Write(*buf)
	stats.writes.Add(1)
	stats.bytes.Add(uint64(len(*buf)))
	*buf = (*buf)[:0]
	bufPool.Put(buf)
	if err != nil {
		b.err = err
	}
	return err
}
