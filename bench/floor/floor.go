// Package floor measures the least CPU a Bitswap-over-TLS fetch of a file
// can cost on this machine: what any implementation, stock Kubo's or ours,
// must do for each byte and each block, with nothing of the protocol
// stack around it.
//
// The model is the W1/W2 fetch (docs/benchmarks.md) cut to its unavoidable
// work. A provider goroutine reads each block from a file in the page cache
// (as the bench's provider does after `ipfs add`) and sends it over a TLS
// 1.3 connection on loopback TCP, with the records of each block in one
// write syscall (as tlsbatch does). A fetcher goroutine reads the
// connection through a large buffer (few read syscalls), checks each
// block's sha256 (the CID check every Bitswap client makes), and writes it
// to a file with pwrite, with one fdatasync per group of bytes. Both run in
// one process with reused buffers, so there is no garbage collection, no
// muxer, no protobuf, no wantlist and no datastore index: what
// [Pipeline] costs is a floor under the CPU per byte of any real fetch of
// the same shape over the same transport.
//
// [Stages] measures the parts alone (hashing, TLS over loopback, page-cache
// reads, writes with their syncs) so that the floor can be read part by
// part against a profile.
package floor

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options is the shape of one measured fetch.
type Options struct {
	// Dir holds the provider's source file and the fetcher's store file.
	Dir string
	// Size is the bytes fetched; it is rounded down to whole blocks.
	Size int64
	// Block is the size of each block (W1: 256 KiB, W2: 16 KiB).
	Block int
	// SyncEvery is the bytes the fetcher writes between fdatasyncs; 0
	// syncs once, at the end.
	SyncEvery int64
	// ReadBuffer is the fetcher's buffer under TLS (0: 256 KiB).
	ReadBuffer int
}

// Cost is what one measured part took.
type Cost struct {
	// CPU is the process's user and system time over the part.
	CPU time.Duration `json:"cpu"`
	// Wall is the elapsed time over the part.
	Wall time.Duration `json:"wall"`
	// Bytes is what the part moved.
	Bytes int64 `json:"bytes"`
	// Blocks is how many blocks the part moved.
	Blocks int `json:"blocks"`
}

// CPUPerGiB is the CPU the part would take for 1 GiB at the same block
// size.
func (c Cost) CPUPerGiB() time.Duration {
	if c.Bytes == 0 {
		return 0
	}
	return time.Duration(float64(c.CPU) * float64(1<<30) / float64(c.Bytes))
}

// CPUPerBlock is the CPU per block.
func (c Cost) CPUPerBlock() time.Duration {
	if c.Blocks == 0 {
		return 0
	}
	return c.CPU / time.Duration(c.Blocks)
}

// ErrCorrupt is returned when a block arrives with a hash other than the
// one the provider sent with it.
var ErrCorrupt = errors.New("floor: block hash mismatch")

func (o Options) check() (Options, error) {
	switch {
	case o.Dir == "":
		return o, errors.New("floor: Options.Dir is empty")
	case o.Block <= 0 || o.Block > 4<<20:
		return o, fmt.Errorf("floor: Options.Block = %d, want 1 to 4 MiB", o.Block)
	case o.Size < int64(o.Block):
		return o, fmt.Errorf("floor: Options.Size = %d is less than one block of %d", o.Size, o.Block)
	case o.SyncEvery < 0:
		return o, fmt.Errorf("floor: Options.SyncEvery = %d is negative", o.SyncEvery)
	case o.ReadBuffer < 0:
		return o, fmt.Errorf("floor: Options.ReadBuffer = %d is negative", o.ReadBuffer)
	}
	if o.ReadBuffer == 0 {
		o.ReadBuffer = 256 << 10
	}
	o.Size -= o.Size % int64(o.Block)
	return o, nil
}

// source writes the provider's file of random bytes, which leaves it in
// the page cache as the bench provider's blocks are after `ipfs add`, and
// returns each block's sha256 (a provider knows its blocks' hashes: they
// are its keys).
func source(o Options) (string, [][sha256.Size]byte, error) {
	path := filepath.Join(o.Dir, "source")
	f, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	buf := make([]byte, o.Block)
	var sums [][sha256.Size]byte
	for left := o.Size; left > 0; left -= int64(o.Block) {
		if _, err := rand.Read(buf); err != nil {
			return "", nil, err
		}
		if _, err := f.Write(buf); err != nil {
			return "", nil, err
		}
		sums = append(sums, sha256.Sum256(buf))
	}
	return path, sums, nil
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f and returns its CPU and wall time.
func measure(f func() error) (Cost, error) {
	c0, t0 := cpuNow(), time.Now()
	err := f()
	return Cost{CPU: cpuNow() - c0, Wall: time.Since(t0)}, err
}

// tlsPair returns the two ends of a TLS 1.3 connection over loopback TCP,
// handshake done. The client end writes through a batchConn, so the records
// of one Write leave in one syscall when its Flush is called.
func tlsPair(ctx context.Context) (server *tls.Conn, client *tls.Conn, flush func() error, err error) {
	cert, err := selfSigned()
	if err != nil {
		return nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		raw.Close()
		return nil, nil, nil, a.err
	}
	bc := &batchConn{Conn: raw}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}
	client = tls.Client(bc, cfg)
	server = tls.Server(a.c, cfg)
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		raw.Close()
		a.c.Close()
		return nil, nil, nil, err
	}
	if err := <-errc; err != nil {
		raw.Close()
		a.c.Close()
		return nil, nil, nil, err
	}
	bc.batching = true
	return server, client, bc.Flush, nil
}

// batchConn holds the writes made while batching is on until Flush.
type batchConn struct {
	net.Conn
	batching bool
	buf      []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if !b.batching {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes what was held in one syscall.
func (b *batchConn) Flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// corruptBlock is the block the provider flips a bit of before sending it
// (tests only; -1: none).
var corruptBlock = -1

// header is what precedes each block on the wire: its length and sha256.
const header = 4 + sha256.Size

// Pipeline measures the whole fetch: the provider's reads, TLS both ways,
// the fetcher's hash checks and writes. It returns ErrCorrupt (wrapped) if
// a block's hash does not match.
func Pipeline(ctx context.Context, o Options) (Cost, error) {
	o, err := o.check()
	if err != nil {
		return Cost{}, err
	}
	src, sums, err := source(o)
	if err != nil {
		return Cost{}, err
	}
	in, err := os.Open(src)
	if err != nil {
		return Cost{}, err
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(o.Dir, "store"))
	if err != nil {
		return Cost{}, err
	}
	defer out.Close()
	server, client, flush, err := tlsPair(ctx)
	if err != nil {
		return Cost{}, err
	}
	defer server.Close()
	defer client.Close()

	blocks := int(o.Size / int64(o.Block))
	c, err := measure(func() error {
		sent := make(chan error, 1)
		go func() { sent <- provide(in, client, flush, o, sums) }()
		if err := fetch(bufio.NewReaderSize(server, o.ReadBuffer), out, o, blocks); err != nil {
			// The provider may be blocked in a write: closing our end
			// fails it (the client end is the provider's alone).
			server.Close()
			<-sent
			return err
		}
		return <-sent
	})
	c.Bytes, c.Blocks = o.Size, blocks
	return c, err
}

// provide sends the blocks read from in, each with its header (its length
// and its hash from sums), one flushed write per block.
func provide(in *os.File, w io.Writer, flush func() error, o Options, sums [][sha256.Size]byte) error {
	buf := make([]byte, header+o.Block)
	for i, sum := range sums {
		data := buf[header:]
		if _, err := in.ReadAt(data, int64(i)*int64(o.Block)); err != nil {
			return fmt.Errorf("floor: provider read of block %d: %w", i, err)
		}
		if i == corruptBlock {
			data[0] ^= 1
		}
		binary.BigEndian.PutUint32(buf, uint32(o.Block))
		copy(buf[4:header], sum[:])
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("floor: send of block %d: %w", i, err)
		}
		if err := flush(); err != nil {
			return fmt.Errorf("floor: send of block %d: %w", i, err)
		}
	}
	return nil
}

// fetch receives blocks blocks, checks each one's hash and writes it to out.
func fetch(r io.Reader, out *os.File, o Options, blocks int) error {
	buf := make([]byte, header+o.Block)
	var off, unsynced int64
	for i := range blocks {
		if _, err := io.ReadFull(r, buf[:header]); err != nil {
			return fmt.Errorf("floor: receive of block %d: %w", i, err)
		}
		n := int(binary.BigEndian.Uint32(buf))
		if n <= 0 || n > o.Block {
			return fmt.Errorf("floor: block %d says it is %d bytes, want 1 to %d", i, n, o.Block)
		}
		data := buf[header : header+n]
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("floor: receive of block %d: %w", i, err)
		}
		if sha256.Sum256(data) != [sha256.Size]byte(buf[4:header]) {
			return fmt.Errorf("%w: block %d", ErrCorrupt, i)
		}
		if _, err := out.WriteAt(data, off); err != nil {
			return fmt.Errorf("floor: store of block %d: %w", i, err)
		}
		off += int64(n)
		unsynced += int64(n)
		if o.SyncEvery > 0 && unsynced >= o.SyncEvery {
			if err := unix.Fdatasync(int(out.Fd())); err != nil {
				return err
			}
			unsynced = 0
		}
	}
	return unix.Fdatasync(int(out.Fd()))
}

// Stages measures the parts of [Pipeline] alone, each over the same bytes
// in the same blocks: "sha256" hashes every block once, "tls" sends them
// over the TLS pair (both ends, with the same batching and buffer), "read"
// reads them from the page cache, "write" writes them with o's syncs.
func Stages(ctx context.Context, o Options) (map[string]Cost, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	src, _, err := source(o)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	blocks := int(o.Size / int64(o.Block))
	buf := make([]byte, header+o.Block)
	res := map[string]Cost{}
	add := func(name string, f func() error) error {
		c, err := measure(f)
		if err != nil {
			return fmt.Errorf("floor: stage %s: %w", name, err)
		}
		c.Bytes, c.Blocks = o.Size, blocks
		res[name] = c
		return nil
	}
	if err := add("read", func() error {
		for i := range blocks {
			if _, err := in.ReadAt(buf[header:], int64(i)*int64(o.Block)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var sink byte
	if err := add("sha256", func() error {
		for range blocks {
			s := sha256.Sum256(buf[header:])
			sink ^= s[0]
		}
		return nil
	}); err != nil {
		return nil, err
	}
	_ = sink
	out, err := os.Create(filepath.Join(o.Dir, "store"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	if err := add("write", func() error {
		var unsynced int64
		for i := range blocks {
			if _, err := out.WriteAt(buf[header:], int64(i)*int64(o.Block)); err != nil {
				return err
			}
			unsynced += int64(o.Block)
			if o.SyncEvery > 0 && unsynced >= o.SyncEvery {
				if err := unix.Fdatasync(int(out.Fd())); err != nil {
					return err
				}
				unsynced = 0
			}
		}
		return unix.Fdatasync(int(out.Fd()))
	}); err != nil {
		return nil, err
	}
	server, client, flush, err := tlsPair(ctx)
	if err != nil {
		return nil, err
	}
	defer server.Close()
	defer client.Close()
	if err := add("tls", func() error {
		sent := make(chan error, 1)
		go func() {
			for range blocks {
				if _, err := client.Write(buf); err != nil {
					sent <- err
					return
				}
				if err := flush(); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		r := bufio.NewReaderSize(server, o.ReadBuffer)
		rbuf := make([]byte, len(buf))
		for range blocks {
			if _, err := io.ReadFull(r, rbuf); err != nil {
				server.Close()
				<-sent
				return err
			}
		}
		return <-sent
	}); err != nil {
		return nil, err
	}
	return res, nil
}
