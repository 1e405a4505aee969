package connmgr

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Stream errors and resets: go-libp2p v0.50 tells a connection manager
// nothing about streams (network.Notifiee has connection and listen events
// only; the swarm's metrics tracer sees connections and dials; the resource
// manager sees streams open and close, not how). The one place a plugin can
// see how a stream ends is the stream multiplexer, which libp2p.Config lets
// it replace: WatchStreams wraps it and reports, once per stream, a reset
// (a local Reset/ResetWithError, or a read or write failing because the
// remote reset it) or an error (any other failed read or write: a deadline
// passed, a broken pipe). A clean end (EOF, Close) reports nothing, and
// neither do the failures of streams whose connection is already closed
// (they all fail together; the disconnect is the event). Only muxed
// transports (TCP, WebSocket: yamux) go through a multiplexer; QUIC and
// WebTransport have native streams that no option reaches, so their
// streams are not watched.

// WatchStreams wraps mux so that the resets and errors of the streams of
// every connection it builds are reported to m (ReportStreamReset,
// ReportStreamError) under the connection's peer.
func (m *Manager) WatchStreams(mux network.Multiplexer) network.Multiplexer {
	return &watchedMuxer{m: m, inner: mux}
}

type watchedMuxer struct {
	m     *Manager
	inner network.Multiplexer
}

func (w *watchedMuxer) NewConn(c net.Conn, isServer bool, scope network.PeerScope) (network.MuxedConn, error) {
	mc, err := w.inner.NewConn(c, isServer, scope)
	if err != nil || scope == nil {
		return mc, err
	}
	p := scope.Peer()
	if p == "" {
		return mc, nil
	}
	return &watchedConn{MuxedConn: mc, m: w.m, p: p}, nil
}

// Unwrap returns the wrapped multiplexer.
func (w *watchedMuxer) Unwrap() network.Multiplexer { return w.inner }

type watchedConn struct {
	network.MuxedConn
	m *Manager
	p peer.ID
}

func (c *watchedConn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	s, err := c.MuxedConn.OpenStream(ctx)
	if err != nil {
		return s, err
	}
	return &watchedStream{MuxedStream: s, c: c}, nil
}

func (c *watchedConn) AcceptStream() (network.MuxedStream, error) {
	s, err := c.MuxedConn.AcceptStream()
	if err != nil {
		return s, err
	}
	return &watchedStream{MuxedStream: s, c: c}, nil
}

// As looks through the wrapper (libp2p's contract for MuxedConn.As).
func (c *watchedConn) As(target any) bool { return c.MuxedConn.As(target) }

type watchedStream struct {
	network.MuxedStream
	c        *watchedConn
	reported atomic.Bool
	// readClosed and writeClosed are set when this side closed that
	// direction: a read or write failing after it is not the peer's doing.
	readClosed, writeClosed atomic.Bool
}

func (s *watchedStream) Read(b []byte) (int, error) {
	n, err := s.MuxedStream.Read(b)
	if err != nil && !s.readClosed.Load() {
		s.failed(err)
	}
	return n, err
}

func (s *watchedStream) Write(b []byte) (int, error) {
	n, err := s.MuxedStream.Write(b)
	if err != nil && !s.writeClosed.Load() {
		s.failed(err)
	}
	return n, err
}

func (s *watchedStream) Close() error {
	s.readClosed.Store(true)
	s.writeClosed.Store(true)
	return s.MuxedStream.Close()
}

func (s *watchedStream) CloseRead() error {
	s.readClosed.Store(true)
	return s.MuxedStream.CloseRead()
}

func (s *watchedStream) CloseWrite() error {
	s.writeClosed.Store(true)
	return s.MuxedStream.CloseWrite()
}

func (s *watchedStream) Reset() error {
	s.report(true)
	return s.MuxedStream.Reset()
}

func (s *watchedStream) ResetWithError(code network.StreamErrorCode) error {
	s.report(true)
	return s.MuxedStream.ResetWithError(code)
}

// failed classifies a read or write error.
func (s *watchedStream) failed(err error) {
	if errors.Is(err, io.EOF) || s.c.IsClosed() {
		return
	}
	var se *network.StreamError
	s.report(errors.Is(err, network.ErrReset) || errors.As(err, &se))
}

// report reports the stream's first failure only.
func (s *watchedStream) report(reset bool) {
	if !s.reported.CompareAndSwap(false, true) {
		return
	}
	if reset {
		s.c.m.ReportStreamReset(s.c.p)
	} else {
		s.c.m.ReportStreamError(s.c.p)
	}
}
