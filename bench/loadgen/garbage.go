package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// MessageSizeMax is the largest Bitswap message a node reads (libp2p's
// network.MessageSizeMax, 4 MiB); longer length prefixes are refused.
const MessageSizeMax = 4 << 20

// GarbageConfig describes a malformed-message run.
type GarbageConfig struct {
	// Target is the node to send garbage to (loopback only).
	Target peer.AddrInfo
	// Rounds repeats the whole set of cases (default 1, at most 100).
	Rounds int
	// HugeWants is the number of entries of the huge-wantlist case
	// (default: as many as fit in MessageSizeMax, about 90,000).
	HugeWants int
	// Streams is the number of streams of the stream-churn case (default 256).
	Streams int
	// CheckTimeout bounds the final liveness check (default 10 s).
	CheckTimeout time.Duration
}

// GarbageCase is the outcome of one kind of malformed message.
type GarbageCase struct {
	// Name identifies the case, e.g. "bad-protobuf".
	Name string `json:"name"`
	// Sent counts messages written in full.
	Sent int `json:"sent"`
	// Errors counts failed writes or dials.
	Errors int `json:"errors"`
	// TargetClosed counts rounds in which the target closed the sending
	// peer's connection afterwards (the expected answer to a broken client).
	TargetClosed int `json:"target_closed"`
	// FirstError is the first write or dial error, if any.
	FirstError string `json:"first_error,omitempty"`
}

// GarbageResult is the whole run.
type GarbageResult struct {
	// Cases in the order run.
	Cases []GarbageCase `json:"cases"`
	// StillAnswers is true when, after all cases, a fresh peer connected
	// and got its DONT_HAVE for a random want-have within CheckTimeout.
	StillAnswers bool `json:"still_answers"`
	// AnswerMillis is how long that answer took.
	AnswerMillis float64 `json:"answer_ms"`
	// CheckError says why the liveness check failed.
	CheckError string `json:"check_error,omitempty"`
}

// garbageCase produces the raw bytes (already length-prefixed where the
// case wants one) to write on one Bitswap stream.
type garbageCase struct {
	name  string
	bytes func(cfg *GarbageConfig) []byte
	// streams > 1 writes the bytes on that many streams of one connection.
	streams func(cfg *GarbageConfig) int
}

func frame(msg []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(msg)))
	return append(out, msg...)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func marshal(m *pb.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return b
}

func wantEntry(block []byte) *pb.Message_Wantlist_Entry {
	return &pb.Message_Wantlist_Entry{Block: block, Priority: 1, WantType: pb.Message_Wantlist_Have, SendDontHave: true}
}

// GarbageCases lists the names of the cases Garbage runs, in order.
func GarbageCases() []string {
	out := make([]string, len(garbageCases))
	for i, c := range garbageCases {
		out[i] = c.name
	}
	return out
}

var garbageCases = []garbageCase{
	{name: "bad-protobuf", bytes: func(*GarbageConfig) []byte {
		// Field number 0 with wire type 7 is invalid from the first byte.
		return frame(append([]byte{0x07}, randBytes(1023)...))
	}},
	{name: "truncated", bytes: func(*GarbageConfig) []byte {
		// A length prefix of 100,000 followed by 10 bytes, then EOF.
		return append(binary.AppendUvarint(nil, 100000), randBytes(10)...)
	}},
	{name: "oversized-length", bytes: func(*GarbageConfig) []byte {
		// A length prefix of 64 MiB, far beyond MessageSizeMax.
		return append(binary.AppendUvarint(nil, 64<<20), randBytes(64<<10)...)
	}},
	{name: "bad-varint", bytes: func(*GarbageConfig) []byte {
		// Eleven continuation bytes: a varint longer than 64 bits.
		return []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	}},
	{name: "huge-wantlist", bytes: func(cfg *GarbageConfig) []byte {
		m := &pb.Message{Wantlist: &pb.Message_Wantlist{Full: true}}
		size := 0
		for i := 0; cfg.HugeWants <= 0 || i < cfg.HugeWants; i++ {
			e := wantEntry(RandomCID().Bytes())
			if i%2 == 0 {
				e.WantType = pb.Message_Wantlist_Block
			}
			es := proto.Size(e) + 4
			if size+es > MessageSizeMax-1024 {
				break
			}
			size += es
			m.Wantlist.Entries = append(m.Wantlist.Entries, e)
		}
		return frame(marshal(m))
	}},
	{name: "invalid-cid", bytes: func(*GarbageConfig) []byte {
		m := &pb.Message{Wantlist: &pb.Message_Wantlist{}}
		for i := 0; i < 1000; i++ {
			// 0xff is not a valid CID version or multicodec varint start.
			m.Wantlist.Entries = append(m.Wantlist.Entries, wantEntry(append([]byte{0xff}, randBytes(35)...)))
		}
		return frame(marshal(m))
	}},
	{name: "empty-cid", bytes: func(*GarbageConfig) []byte {
		m := &pb.Message{Wantlist: &pb.Message_Wantlist{Entries: []*pb.Message_Wantlist_Entry{wantEntry(nil)}}}
		return frame(marshal(m))
	}},
	{name: "oversized-cid", bytes: func(*GarbageConfig) []byte {
		// A valid CID whose identity multihash carries 64 KiB.
		h, err := mh.Sum(randBytes(64<<10), mh.IDENTITY, -1)
		if err != nil {
			panic(err)
		}
		c := cid.NewCidV1(cid.Raw, h)
		m := &pb.Message{Wantlist: &pb.Message_Wantlist{Entries: []*pb.Message_Wantlist_Entry{wantEntry(c.Bytes())}}}
		return frame(marshal(m))
	}},
	{name: "bad-block-prefix", bytes: func(*GarbageConfig) []byte {
		m := &pb.Message{Payload: []*pb.Message_Block{{Prefix: []byte{0xff, 0xff, 0xff}, Data: randBytes(1024)}}}
		return frame(marshal(m))
	}},
	{name: "bad-presence", bytes: func(*GarbageConfig) []byte {
		m := &pb.Message{BlockPresences: []*pb.Message_BlockPresence{
			{Cid: nil, Type: pb.Message_Have},
			{Cid: []byte{0xff, 0x01}, Type: pb.Message_DontHave},
		}}
		return frame(marshal(m))
	}},
	{name: "unsolicited-blocks", bytes: func(*GarbageConfig) []byte {
		// Three valid 1 MiB blocks nobody asked for.
		m := &pb.Message{}
		for i := 0; i < 3; i++ {
			data := randBytes(1 << 20)
			c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
			if err != nil {
				panic(err)
			}
			m.Payload = append(m.Payload, &pb.Message_Block{Prefix: c.Prefix().Bytes(), Data: data})
		}
		return frame(marshal(m))
	}},
	{name: "unknown-fields", bytes: func(*GarbageConfig) []byte {
		// A message made only of an unknown field 15 holding 1 MiB.
		b := protowire.AppendTag(nil, 15, protowire.BytesType)
		b = protowire.AppendBytes(b, randBytes(1<<20))
		return frame(b)
	}},
	{name: "stream-churn", bytes: func(*GarbageConfig) []byte {
		// Many streams, each one valid message of one random want-have.
		m := bsmsg.New(false)
		m.AddEntry(RandomCID(), 1, pb.Message_Wantlist_Have, true)
		return frame(marshal(m.ToProtoV1()))
	}, streams: func(cfg *GarbageConfig) int { return cfg.Streams }},
}

// Garbage sends each malformed or oversized case on a Bitswap stream from a
// fresh peer, cfg.Rounds times, then checks that the target still answers
// a well-formed want-have. It never returns an error for the target's
// behaviour; that is what the result reports.
func Garbage(ctx context.Context, cfg GarbageConfig) (GarbageResult, error) {
	var res GarbageResult
	if err := CheckLoopback(cfg.Target); err != nil {
		return res, err
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 1
	}
	if cfg.Rounds > 100 {
		return res, errors.New("loadgen: at most 100 garbage rounds")
	}
	if cfg.Streams <= 0 {
		cfg.Streams = 256
	}
	cfg.Streams = min(cfg.Streams, 4096)
	cfg.HugeWants = min(cfg.HugeWants, MaxWants)
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 10 * time.Second
	}
	for _, gc := range garbageCases {
		out := GarbageCase{Name: gc.name}
		payload := gc.bytes(&cfg)
		streams := 1
		if gc.streams != nil {
			streams = gc.streams(&cfg)
		}
		for r := 0; r < cfg.Rounds && ctx.Err() == nil; r++ {
			sent, closed, err := sendGarbage(ctx, cfg.Target, payload, streams)
			out.Sent += sent
			if err != nil {
				out.Errors++
				if out.FirstError == "" {
					out.FirstError = err.Error()
				}
			}
			if closed {
				out.TargetClosed++
			}
		}
		res.Cases = append(res.Cases, out)
	}
	ok, d, err := CheckAnswers(ctx, cfg.Target, cfg.CheckTimeout)
	res.StillAnswers, res.AnswerMillis = ok, ms(d)
	if err != nil {
		res.CheckError = err.Error()
	}
	return res, nil
}

// sendGarbage writes payload on streams Bitswap streams of one fresh peer
// and reports how many were written in full and whether the target closed
// the connection within half a second afterwards.
func sendGarbage(ctx context.Context, target peer.AddrInfo, payload []byte, streams int) (sent int, closed bool, err error) {
	peers, _, err := OpenPeers(ctx, target, 1, PeerOptions{DialTimeout: 10 * time.Second})
	if err != nil {
		return 0, false, err
	}
	p := peers[0]
	defer p.Close()
	for i := 0; i < streams; i++ {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, serr := p.Host.NewStream(sctx, target.ID, bsnet.ProtocolBitswap)
		cancel()
		if serr != nil {
			err = fmt.Errorf("loadgen: opening a Bitswap stream: %w", serr)
			break
		}
		_ = s.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, werr := s.Write(payload); werr != nil {
			_ = s.Reset()
			err = fmt.Errorf("loadgen: write: %w", werr)
			break
		}
		sent++
		_ = s.CloseWrite()
		_ = s.Close()
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) && p.Connected() {
		time.Sleep(20 * time.Millisecond)
	}
	return sent, !p.Connected(), err
}

// CheckAnswers connects a fresh Bitswap peer to target, sends a want-have
// for a random CID with send-dont-have, and waits up to timeout for the
// DONT_HAVE. It returns whether the answer came and how long it took.
func CheckAnswers(ctx context.Context, target peer.AddrInfo, timeout time.Duration) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	want := RandomCID()
	got := make(chan struct{}, 1)
	peers, _, err := OpenPeers(ctx, target, 1, PeerOptions{Bitswap: true, DialTimeout: timeout, SendTimeout: timeout,
		OnMessage: func(_ int, m bsmsg.BitSwapMessage) {
			for _, c := range m.DontHaves() {
				if c.Equals(want) {
					select {
					case got <- struct{}{}:
					default:
					}
				}
			}
		}})
	if err != nil {
		return false, time.Since(start), err
	}
	defer ClosePeers(peers)
	m := bsmsg.New(false)
	m.AddEntry(want, 1, pb.Message_Wantlist_Have, true)
	if err := peers[0].Send(ctx, m); err != nil {
		return false, time.Since(start), err
	}
	select {
	case <-got:
		return true, time.Since(start), nil
	case <-ctx.Done():
		return false, time.Since(start), fmt.Errorf("loadgen: no DONT_HAVE within %s", timeout)
	}
}
