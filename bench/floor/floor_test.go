package floor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestPipelineStoresWhatWasSent: the fetcher's file ends up equal to the
// provider's, block for block, and the cost covers every block.
func TestPipelineStoresWhatWasSent(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Size: 1<<20 + 100, Block: 16 << 10, SyncEvery: 256 << 10}
	c, err := Pipeline(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Blocks != 64 || c.Bytes != 1<<20 {
		t.Fatalf("cost covers %d blocks, %d bytes; want 64 blocks, %d bytes (the size rounded down to whole blocks)", c.Blocks, c.Bytes, 1<<20)
	}
	if c.CPU <= 0 || c.Wall <= 0 {
		t.Fatalf("cost %+v: want CPU and wall time measured", c)
	}
	src, err := os.ReadFile(filepath.Join(dir, "source"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, got) {
		t.Fatalf("the store (%d bytes) differs from the source (%d bytes)", len(got), len(src))
	}
}

// TestPipelineCatchesACorruptBlock: a block whose bytes do not match its
// hash fails the fetch with ErrCorrupt, so the pipeline's hash check is
// real work and not skipped.
func TestPipelineCatchesACorruptBlock(t *testing.T) {
	corruptBlock = 5
	defer func() { corruptBlock = -1 }()
	_, err := Pipeline(context.Background(), Options{Dir: t.TempDir(), Size: 16 * 4096, Block: 4096})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Pipeline with block 5 corrupted: %v, want ErrCorrupt", err)
	}
}

// TestStagesMeasureEveryPart: each part is measured over all the blocks.
func TestStagesMeasureEveryPart(t *testing.T) {
	st, err := Stages(context.Background(), Options{Dir: t.TempDir(), Size: 1 << 20, Block: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"read", "sha256", "write", "tls"} {
		c, ok := st[k]
		if !ok || c.Blocks != 16 || c.Bytes != 1<<20 || c.Wall <= 0 {
			t.Fatalf("stage %s: %+v (present %v), want 16 blocks of 1 MiB in all, timed", k, c, ok)
		}
	}
}

// TestOptionsAreChecked: bad shapes are refused with an error that names
// the field.
func TestOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Size: 1 << 20, Block: 4096}, "Dir"},
		{Options{Dir: "x", Size: 1 << 20, Block: 0}, "Block"},
		{Options{Dir: "x", Size: 100, Block: 4096}, "Size"},
		{Options{Dir: "x", Size: 1 << 20, Block: 4096, SyncEvery: -1}, "SyncEvery"},
		{Options{Dir: "x", Size: 1 << 20, Block: 4096, ReadBuffer: -1}, "ReadBuffer"},
	} {
		_, err := Pipeline(context.Background(), tc.o)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("Pipeline(%+v) = %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
}
