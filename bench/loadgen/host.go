package loadgen

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	iface "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// UserAgent is what the generator's hosts announce through identify.
const UserAgent = "kubo-highload-loadgen"

// ErrNotLoopback is returned for a target with any non-loopback address.
var ErrNotLoopback = errors.New("loadgen: target must have loopback addresses only (127.0.0.0/8 or ::1)")

// ParseTarget turns "/ip4/127.0.0.1/tcp/PORT/p2p/ID" into an AddrInfo and
// checks that it is a loopback address.
func ParseTarget(s string) (peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("loadgen: bad target %q: %w", s, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("loadgen: bad target %q (want /ip4/127.0.0.1/tcp/PORT/p2p/ID): %w", s, err)
	}
	return *ai, CheckLoopback(*ai)
}

// CheckLoopback returns ErrNotLoopback unless ai has at least one address
// and every address is a loopback IP address.
func CheckLoopback(ai peer.AddrInfo) error {
	if ai.ID == "" || len(ai.Addrs) == 0 {
		return fmt.Errorf("loadgen: target needs a peer ID and an address")
	}
	for _, a := range ai.Addrs {
		if !manet.IsIPLoopback(a) {
			return fmt.Errorf("%w: %s", ErrNotLoopback, a)
		}
	}
	return nil
}

// NewHost builds one minimal libp2p host with a fresh Ed25519 identity:
// TCP only, noise, yamux, no listen address, a null resource manager and
// connection manager, no relay, no ping service, no metrics. It keeps the
// generator's own cost per peer low; the target sees an ordinary peer.
func NewHost() (host.Host, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return libp2p.New(
		libp2p.Identity(sk),
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.Ping(false),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.UserAgent(UserAgent),
	)
}

// Counters are what a peer's Bitswap receiver has seen from the target.
// All fields are updated atomically.
type Counters struct {
	// Messages is the number of Bitswap messages received.
	Messages atomic.Int64
	// Haves counts the HAVE entries in those messages.
	Haves atomic.Int64
	// DontHaves counts the DONT_HAVE entries.
	DontHaves atomic.Int64
	// Blocks counts the blocks.
	Blocks atomic.Int64
	// Errors counts receive errors (undecodable messages from the target).
	Errors atomic.Int64
}

// receiver is the bsnet Receiver of one peer.
type receiver struct {
	c  *Counters
	fn func(bsmsg.BitSwapMessage)
}

func (r *receiver) ReceiveMessage(_ context.Context, _ peer.ID, m bsmsg.BitSwapMessage) {
	r.c.Messages.Add(1)
	for _, bp := range m.BlockPresences() {
		if bp.Type == pb.Message_Have {
			r.c.Haves.Add(1)
		} else {
			r.c.DontHaves.Add(1)
		}
	}
	r.c.Blocks.Add(int64(len(m.Blocks())))
	if r.fn != nil {
		r.fn(m)
	}
}

func (r *receiver) ReceiveError(error)       { r.c.Errors.Add(1) }
func (r *receiver) PeerConnected(peer.ID)    {}
func (r *receiver) PeerDisconnected(peer.ID) {}

// Peer is one generator host connected to the target, optionally with a
// Bitswap network on top.
type Peer struct {
	// Host is the peer's libp2p host.
	Host host.Host
	// Target is the peer the host dialled.
	Target peer.AddrInfo
	// Net is the Bitswap network (nil for a connection-only peer).
	Net iface.BitSwapNetwork
	// Recv counts what the target sent (zero for a connection-only peer).
	Recv Counters
	// Index is the peer's position among the n of OpenPeers, the index
	// that PeerOptions.OnMessage receives.
	Index int

	sendTimeout time.Duration
	senderMu    sync.Mutex
	sender      iface.MessageSender
}

// PeerOptions configure OpenPeers.
type PeerOptions struct {
	// Bitswap starts a bsnet network on each peer, so that it can Send
	// (on one long-lived stream, opened by the first Send) and count what
	// the target answers.
	Bitswap bool
	// OnMessage, if set with Bitswap, is called with each peer's index and
	// every message that peer receives, on bsnet's goroutine.
	OnMessage func(i int, m bsmsg.BitSwapMessage)
	// Parallel is how many peers connect at once (default 32).
	Parallel int
	// DialTimeout bounds each connection attempt (default 30 s).
	DialTimeout time.Duration
	// SendTimeout bounds each message write (default 10 s).
	SendTimeout time.Duration
}

// OpenPeers creates n peers and connects each to target, Parallel at a
// time, and returns the connected ones in index order. Peers that fail to connect are closed and counted in failed; the
// first such error is returned as firstErr. The context bounds the whole
// operation; on its end the remaining peers are not attempted.
func OpenPeers(ctx context.Context, target peer.AddrInfo, n int, o PeerOptions) (peers []*Peer, failed int, firstErr error) {
	if err := CheckLoopback(target); err != nil {
		return nil, n, err
	}
	if o.Parallel <= 0 {
		o.Parallel = 32
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	all := make([]*Peer, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Parallel)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := openPeer(ctx, target, i, o)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			all[i] = p
		}(i)
	}
	wg.Wait()
	for _, p := range all {
		if p != nil {
			peers = append(peers, p)
		}
	}
	if firstErr == nil && ctx.Err() != nil && len(peers) < n {
		firstErr = ctx.Err()
	}
	return peers, n - len(peers), firstErr
}

func openPeer(ctx context.Context, target peer.AddrInfo, i int, o PeerOptions) (*Peer, error) {
	h, err := NewHost()
	if err != nil {
		return nil, err
	}
	p := &Peer{Host: h, Target: target, Index: i}
	if o.Bitswap {
		p.Net = bsnet.NewFromIpfsHost(h)
		r := &receiver{c: &p.Recv}
		if o.OnMessage != nil {
			r.fn = func(m bsmsg.BitSwapMessage) { o.OnMessage(i, m) }
		}
		p.Net.Start(r)
	}
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if err := h.Connect(dctx, target); err != nil {
		p.Close()
		return nil, fmt.Errorf("loadgen: connect: %w", err)
	}
	p.sendTimeout = o.SendTimeout
	return p, nil
}

// Send writes m on the peer's long-lived Bitswap stream to the target,
// opening the stream on first use. (An opened stream must carry data soon:
// libp2p resets an inbound stream whose protocol is not negotiated within
// 10 s, and the negotiation rides on the first write.) After a failed
// write bsnet resets the stream and the next Send opens a new one.
func (p *Peer) Send(ctx context.Context, m bsmsg.BitSwapMessage) error {
	if p.Net == nil {
		return errors.New("loadgen: peer has no Bitswap network")
	}
	p.senderMu.Lock()
	s := p.sender
	if s == nil {
		var err error
		s, err = p.Net.NewMessageSender(ctx, p.Target.ID, &iface.MessageSenderOpts{
			MaxRetries: 1, SendTimeout: p.sendTimeout, SendErrorBackoff: 50 * time.Millisecond,
		})
		if err != nil {
			p.senderMu.Unlock()
			return fmt.Errorf("loadgen: opening a Bitswap stream: %w", err)
		}
		p.sender = s
	}
	p.senderMu.Unlock()
	return s.SendMsg(ctx, m)
}

// Connected reports whether the peer still has a connection to the target.
func (p *Peer) Connected() bool {
	return p.Host.Network().Connectedness(p.Target.ID) == network.Connected
}

// Close stops the Bitswap network and closes the host.
func (p *Peer) Close() {
	p.senderMu.Lock()
	if p.sender != nil {
		_ = p.sender.Reset()
	}
	p.senderMu.Unlock()
	if p.Net != nil {
		p.Net.Stop()
	}
	_ = p.Host.Close()
}

// ClosePeers closes all peers, Parallel at a time, and waits.
func ClosePeers(peers []*Peer) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, p := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func(p *Peer) {
			defer wg.Done()
			defer func() { <-sem }()
			p.Close()
		}(p)
	}
	wg.Wait()
}
