package blocklog

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDecodeRecord checks that decoding arbitrary bytes never panics, that
// a decoded record re-encodes to the same bytes, that an encoded record
// decodes to itself, and that scanning arbitrary bytes as a segment stops
// cleanly. The hint parser gets the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, kindPut, "/blk/1", []byte("value")))
	f.Add(appendRecord(nil, kindDelete, "/blk/1", nil))
	f.Add(appendRecord(nil, kindCommit, "", []byte{2, 0, 0, 0}))
	f.Add([]byte{1, 2, 3, 4, 9, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeRecord(b); err == nil {
			re := appendRecord(nil, r.kind, string(r.key), r.val)
			if !bytes.Equal(re, b[:r.size]) {
				t.Fatalf("re-encoding differs")
			}
		}
		if len(b) > 2 {
			kind := kindPut + b[0]%2
			k := string(b[1 : 1+int(b[1])%(len(b)-1)])
			v := b[1+len(k):]
			if kind == kindDelete {
				v = nil
			}
			enc := appendRecord(nil, kind, k, v)
			if split := append(appendHeader(nil, kind, k, v), v...); !bytes.Equal(split, enc) {
				t.Fatalf("appendHeader+value differs from appendRecord")
			}
			r, err := decodeRecord(enc)
			if err != nil || r.kind != kind || string(r.key) != k || !bytes.Equal(r.val, v) || r.size != len(enc) {
				t.Fatalf("round trip: %v", err)
			}
			if _, err := decodeRecord(enc[:len(enc)-1]); err == nil {
				t.Fatalf("truncated record decoded")
			}
		}
		seg := append(segHeader(1), b...)
		n := 0
		end, _, err := scanSegment(bytes.NewReader(seg), int64(len(seg)), func(int64, record) error { n++; return nil })
		if err != nil || end > int64(len(seg)) || end < segHeaderSize {
			t.Fatalf("scan: end %d of %d, %v", end, len(seg), err)
		}
		parseHint(b, 0, int64(len(b)))
		parseSegHeader(b)

		// The same bytes as the body of a hint file with a valid header
		// and checksum, so that the entry checks are what is fuzzed: any
		// entry it returns must name a whole record inside the segment.
		size := int64(segHeaderSize) + int64(len(b))*64
		h := make([]byte, hintHeaderSize, hintHeaderSize+len(b)+4)
		copy(h, hintMagic)
		h[4] = formatVersion
		binary.LittleEndian.PutUint64(h[8:], 5)
		binary.LittleEndian.PutUint64(h[16:], uint64(size))
		h = append(h, b...)
		h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, castagnoli))
		entries, err := parseHint(h, 5, size)
		if err != nil {
			return
		}
		for _, e := range entries {
			if (e.kind != kindPut && e.kind != kindDelete) || e.off < segHeaderSize || e.off+int64(recordLen(len(e.key), e.vlen)) > size {
				t.Fatalf("hint entry %+v outside a segment of %d bytes", e, size)
			}
		}
	})
}
