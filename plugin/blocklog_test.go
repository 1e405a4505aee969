package plugin

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/kubo/repo/fsrepo"

	"github.com/kubo-highload/highload/datastore/blocklog"
)

func init() {
	_ = fsrepo.AddDatastoreConfigHandler(BlocklogTypeName, parseBlocklogConfig)
}

func TestBlocklogSpecDiskSpecIsIdentity(t *testing.T) {
	a, err := parseBlocklogConfig(specMap(t, `{"type":"blocklog","path":"blocklog","sync":true,"preallocate":false,"preallocMaxGroup":"192KiB","segmentSize":"64MiB","compactRatio":0.3,"compactRate":"8MiB","compactInterval":"10s"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseBlocklogConfig(specMap(t, `{"type":"blocklog","path":"blocklog"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !a.(*blocklogConfig).opts.NoPreallocate || b.(*blocklogConfig).opts.NoPreallocate {
		t.Fatal("preallocate not parsed")
	}
	if g := a.(*blocklogConfig).opts.PreallocMaxGroup; g != 192<<10 || b.(*blocklogConfig).opts.PreallocMaxGroup != 0 {
		t.Fatalf("preallocMaxGroup parsed as %d (default %d), want 196608 (0)", g, b.(*blocklogConfig).opts.PreallocMaxGroup)
	}
	if a.DiskSpec().String() != b.DiskSpec().String() || a.DiskSpec().String() != `{"path":"blocklog","type":"blocklog"}` {
		t.Fatalf("DiskSpec %s vs %s", a.DiskSpec(), b.DiskSpec())
	}
}

func TestBlocklogSpecRefusedNamingTheField(t *testing.T) {
	for spec, field := range map[string]string{
		`{"type":"blocklog"}`:                                      "path",
		`{"type":"blocklog","path":3}`:                             "path",
		`{"type":"blocklog","path":"x","sync":"yes"}`:              "sync",
		`{"type":"blocklog","path":"x","preallocate":1}`:           "preallocate",
		`{"type":"blocklog","path":"x","segmentSize":"1KiB"}`:      "segmentSize",
		`{"type":"blocklog","path":"x","preallocMaxGroup":"1KiB"}`: "preallocMaxGroup",
		`{"type":"blocklog","path":"x","preallocMaxGroup":-5}`:     "preallocMaxGroup",
		`{"type":"blocklog","path":"x","preallocMaxGroup":"2GiB"}`: "preallocMaxGroup",
		`{"type":"blocklog","path":"x","segmentSize":"lots"}`:      "segmentSize",
		`{"type":"blocklog","path":"x","compactRatio":2}`:          "compactRatio",
		`{"type":"blocklog","path":"x","compactRate":"1KiB"}`:      "compactRate",
		`{"type":"blocklog","path":"x","compactInterval":"often"}`: "compactInterval",
		`{"type":"blocklog","path":"x","segmentsize":"1GiB"}`:      "segmentsize",
		`{"type":"blocklog","path":"x","compactRatio":"half"}`:     "compactRatio",
	} {
		_, err := parseBlocklogConfig(specMap(t, spec))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Fatalf("%s: err %v does not name %s", spec, err, field)
		}
	}
}

// TestBlocklogAsTieredChild opens a tiered store whose durable tier is a
// blocklog, through Kubo's spec parsing, writes, reopens and reads.
func TestBlocklogAsTieredChild(t *testing.T) {
	spec := `{"type":"tiered","tiers":[{"type":"memory","capacity":"16MiB"},
		{"name":"log","child":{"type":"blocklog","path":"fastlog"},"capacity":"64MiB"}]}`
	dir := t.TempDir()
	ctx := context.Background()
	for round := range 2 {
		c, err := parseTieredConfig(specMap(t, spec))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.DiskSpec().String(); got != `{"path":"fastlog","type":"blocklog"}` {
			t.Fatalf("DiskSpec %s", got)
		}
		d, err := c.Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		k := ds.NewKey("/CIQTEST")
		if round == 0 {
			if err := d.Put(ctx, k, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if st := blocklogStats(); len(st) != 1 || st[0].Stats.Keys != 1 {
				t.Fatalf("stats %+v", st)
			}
		}
		v, err := d.Get(ctx, k)
		if err != nil || !bytes.Equal(v, []byte("hello")) {
			t.Fatalf("round %d: get %q, %v", round, v, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := blocklogStats(); len(st) != 0 {
		t.Fatalf("closed logs still listed: %+v", st)
	}
}

// TestBlocklogTierDemotesAndCompacts: a tiered store whose fast tier is a
// small log over flatfs. After an ingest three times the log's capacity the
// mover demotes down to the low watermark of live bytes, and no further
// (the log's garbage does not count as usage), and the log's compactor
// brings its files back near that size.
func TestBlocklogTierDemotesAndCompacts(t *testing.T) {
	spec := `{"type":"tiered","moverInterval":"100ms","moverRate":"256MiB","tiers":[{"type":"memory","capacity":"16MiB"},
		{"name":"log","child":{"type":"blocklog","path":"fastlog","segmentSize":"1MiB","compactInterval":"100ms","compactRatio":0.3},"capacity":"16MiB"},
		{"name":"flat","child":` + flatfsChild + `,"capacity":"1GiB"}]}`
	c, err := parseTieredConfig(specMap(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	const n = 1500
	val := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8), 7}, 32<<10/3) }
	for i := range n {
		if err := d.Put(ctx, ds.NewKey(fmt.Sprintf("/CIQK%06d", i)), val(i)); err != nil {
			t.Fatal(err)
		}
	}
	var st blocklog.Stats
	settled := false
	for range 300 { // up to 30 s
		time.Sleep(100 * time.Millisecond)
		st = blocklogStats()[0].Stats
		// At most the high watermark (90% of 16 MiB): the mover keeps up
		// with the ingest in batches, so the last pass may have ended
		// anywhere between the low and the high watermark.
		if st.LiveBytes <= 16<<20*9/10 && st.DiskBytes <= 20<<20 {
			settled = true
			break
		}
	}
	if !settled {
		t.Fatalf("log did not settle: %+v", st)
	}
	if st.Keys < 200 || st.Compactions == 0 {
		t.Fatalf("mover emptied the log or nothing compacted: %+v", st)
	}
	// DiskUsage (repo stat) is the files' size, garbage included.
	du, err := d.(ds.PersistentDatastore).DiskUsage(ctx)
	if err != nil || du < uint64(st.DiskBytes) {
		t.Fatalf("DiskUsage %d below the log's files %d (%v)", du, st.DiskBytes, err)
	}
	for i := range n {
		v, err := d.Get(ctx, ds.NewKey(fmt.Sprintf("/CIQK%06d", i)))
		if err != nil || !bytes.Equal(v, val(i)) {
			t.Fatalf("block %d after demotion and compaction: %v", i, err)
		}
	}
}
