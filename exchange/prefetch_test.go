package exchange

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	bsexchange "github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	format "github.com/ipfs/go-ipld-format"
)

// memExchange serves blocks from a map and counts the wants it gets.
type memExchange struct {
	mu     sync.Mutex
	blocks map[cid.Cid]blocks.Block
	wants  map[cid.Cid]int
	// notified counts blocks announced through NotifyNewBlocks.
	notified int
}

func (m *memExchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wants[c]++
	b, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("no %s", c)
	}
	return b, nil
}

func (m *memExchange) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	out := make(chan blocks.Block, len(cs))
	for _, c := range cs {
		if b, err := m.GetBlock(ctx, c); err == nil {
			out <- b
		}
	}
	close(out)
	return out, nil
}

func (m *memExchange) NotifyNewBlocks(_ context.Context, bs ...blocks.Block) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notified += len(bs)
	return nil
}
func (m *memExchange) Close() error                                  { return nil }
func (m *memExchange) NewSession(context.Context) bsexchange.Fetcher { return m }

// tree builds a dag-pb tree of the given fan-out and depth; it returns the root.
func tree(m *memExchange, fanout, depth int, tag string) cid.Cid {
	if depth == 0 {
		b := blocks.NewBlock([]byte(tag))
		m.blocks[b.Cid()] = b
		return b.Cid()
	}
	nd := merkledag.NodeWithData([]byte(tag))
	for i := 0; i < fanout; i++ {
		c := tree(m, fanout, depth-1, fmt.Sprintf("%s/%d", tag, i))
		if err := nd.AddRawLink(fmt.Sprint(i), &format.Link{Cid: c}); err != nil {
			panic(err)
		}
	}
	m.blocks[nd.Cid()] = nd
	return nd.Cid()
}

func TestPrefetchFetchesTheDAGAhead(t *testing.T) {
	m := &memExchange{blocks: map[cid.Cid]blocks.Block{}, wants: map[cid.Cid]int{}}
	root := tree(m, 8, 3, "r") // 1 + 8 + 64 + 512 blocks
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	px := NewPrefetchExchange(m, bs, 64).(*PrefetchExchange)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := px.NewSession(ctx)
	if _, err := sess.GetBlock(ctx, root); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for px.Stats().Stored < uint64(len(m.blocks)-1) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := px.Stats(); s.Stored != uint64(len(m.blocks)-1) {
		t.Fatalf("stored %d of %d blocks below the root: %+v", s.Stored, len(m.blocks)-1, s)
	}
	m.mu.Lock()
	notified := m.notified
	m.mu.Unlock()
	if notified != len(m.blocks)-1 {
		t.Fatalf("NotifyNewBlocks told of %d blocks, want %d: a walker waiting on the exchange would hang", notified, len(m.blocks)-1)
	}
	for c, n := range m.wants {
		if n != 1 {
			t.Fatalf("%s wanted %d times", c, n)
		}
	}
	if NewPrefetchExchange(m, bs, 0) != bsexchange.SessionExchange(m) {
		t.Fatal("width 0 must return the exchange unchanged")
	}
}
