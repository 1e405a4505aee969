package tiered

import (
	"bytes"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	c := newCodec(1024)
	cases := map[string][]byte{
		"empty":          {},
		"small":          []byte("hello"),
		"magic prefix":   append(append([]byte{}, frameMagic[:]...), 1, 2, 3),
		"magic only":     frameMagic[:],
		"compressible":   bytes.Repeat([]byte("ipfs "), 2000),
		"incompressible": randBytes(64 << 10),
		"mixed":          append(randBytes(8<<10), bytes.Repeat([]byte{0}, 64<<10)...),
	}
	for name, v := range cases {
		stored, framed := c.encode(v)
		got, err := c.decode(stored)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s: round trip failed: %v", name, err)
		}
		if rawSize(stored) != len(v) {
			t.Fatalf("%s: rawSize %d, want %d", name, rawSize(stored), len(v))
		}
		switch name {
		case "compressible":
			if !framed || len(stored) >= len(v)/2 {
				t.Fatalf("compressible value not compressed: %d -> %d", len(v), len(stored))
			}
		case "incompressible":
			if framed {
				t.Fatal("incompressible value framed")
			}
		case "magic prefix", "magic only":
			if !framed {
				t.Fatalf("%s: a value starting with the magic must be escaped", name)
			}
		}
	}
}

func TestCorruptFrameIsAnError(t *testing.T) {
	c := newCodec(1024)
	stored, framed := c.encode(bytes.Repeat([]byte("abcd"), 4096))
	if !framed {
		t.Fatal("not compressed")
	}
	bad := append([]byte{}, stored...)
	bad[len(bad)-5] ^= 0xff
	if _, err := c.decode(bad); err == nil {
		t.Fatal("corrupt payload decoded without error")
	}
}

// FuzzFrame checks that encode/decode round-trips every value byte-exactly,
// that rawSize agrees without decompressing, and that decoding arbitrary
// bytes never panics.
func FuzzFrame(f *testing.F) {
	c := newCodec(64)
	f.Add([]byte("hello"))
	f.Add(append(append([]byte{}, frameMagic[:]...), 1, 0, 5, 0, 0, 0, 0))
	f.Add(bytes.Repeat([]byte("xy"), 100))
	stored, _ := c.encode(bytes.Repeat([]byte("xy"), 100))
	f.Add(stored)
	f.Fuzz(func(t *testing.T, v []byte) {
		stored, _ := c.encode(v)
		got, err := c.decode(stored)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("round trip failed: %v", err)
		}
		if rawSize(stored) != len(v) {
			t.Fatalf("rawSize %d, want %d", rawSize(stored), len(v))
		}
		// Arbitrary bytes as stored: decode may fail, never panic, and when
		// it succeeds the size agrees with rawSize.
		if out, err := c.decode(v); err == nil && len(out) != rawSize(v) {
			t.Fatalf("decoded %d bytes, rawSize says %d", len(out), rawSize(v))
		}
	})
}

// TestIncompressibleEncodeAllocatesNothing: a large incompressible value
// (a bulk fetch's 256 KiB blocks) is stored raw after the 4 KiB probe,
// which must not allocate: the probe's buffer comes from a pool.
func TestIncompressibleEncodeAllocatesNothing(t *testing.T) {
	c := newCodec(32 << 10)
	v := randBytes(256 << 10)
	if _, framed := c.encode(v); framed {
		t.Fatal("random bytes were framed")
	}
	if n := testing.AllocsPerRun(50, func() { c.encode(v) }); n != 0 {
		t.Fatalf("encode of an incompressible 256 KiB value: %v allocations, want 0", n)
	}
}
