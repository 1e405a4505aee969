package tiered

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The value frame. A value is stored raw unless it is compressed or, rarely,
// unless its first bytes look like a frame; then it is stored as
//
//	magic (4 bytes) | version (1) | flags (1) | raw size (uvarint) | crc32c of the bytes before it (4) | payload
//
// flags 0 means the payload is the raw value (escaping a value that starts
// with the magic); flags 1 means the payload is one zstd frame with its own
// content checksum. The header carries the raw size, so GetSize reads it
// without decompressing. Blocks written by plain flatfs (an adopted repo)
// are raw and decode as themselves: a raw value is taken for a frame only if
// it starts with the 4-byte magic, a known version and flag byte, and a
// matching crc32c over its header.
var frameMagic = [4]byte{0xb7, 'h', 'l', 'z'}

const (
	frameVersion = 1

	flagStored = 0
	flagZstd   = 1

	// maxHeader is the largest header: magic, version, flags, a 10-byte
	// uvarint and the crc.
	maxHeader = 4 + 1 + 1 + binary.MaxVarintLen64 + 4
	// MaxFrameRawSize bounds the raw size a frame may claim (and so the
	// memory a decode may take).
	MaxFrameRawSize = 64 << 20
	// probeSize is the prefix compressed to test whether a value pays.
	probeSize = 4 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// codec compresses and frames values. Its zero value is not usable; use
// newCodec.
type codec struct {
	threshold int     // values of at least this many bytes are tried
	minSaving float64 // compress only if it saves at least this fraction
	enc       *zstd.Encoder
	dec       *zstd.Decoder
}

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
)

// newCodec returns a codec that tries values of threshold bytes or more
// (threshold <= 0 turns compression off).
func newCodec(threshold int) *codec {
	zstdOnce.Do(func() {
		// EncodeAll and DecodeAll are safe for concurrent use; one of each
		// serves every store in the process.
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxFrameRawSize), zstd.WithDecoderMaxWindow(MaxFrameRawSize))
	})
	return &codec{threshold: threshold, minSaving: 0.10, enc: zstdEnc, dec: zstdDec}
}

// encode returns the bytes to store for v and whether they are a frame.
// Values are never modified; the result may alias v.
func (c *codec) encode(v []byte) (stored []byte, framed bool) {
	if c.threshold > 0 && len(v) >= c.threshold && len(v) <= MaxFrameRawSize && c.pays(v) {
		out := appendHeader(make([]byte, 0, maxHeader+len(v)/2), flagZstd, len(v))
		out = c.enc.EncodeAll(v, out)
		if float64(len(out)) <= float64(len(v))*(1-c.minSaving) {
			return out, true
		}
	}
	if bytes.HasPrefix(v, frameMagic[:]) {
		out := appendHeader(make([]byte, 0, maxHeader+len(v)), flagStored, len(v))
		return append(out, v...), true
	}
	return v, false
}

// pays is the cheap incompressibility check: compress a 4 KiB prefix and
// see whether it shrinks by the minimum saving. Media, archives and
// already-compressed blocks fail it for the price of 4 KiB of zstd.
func (c *codec) pays(v []byte) bool {
	if len(v) <= 2*probeSize {
		return true // small enough to just try
	}
	buf := probeBufs.Get().(*[probeSize + 256]byte)
	out := c.enc.EncodeAll(v[:probeSize], buf[:0])
	pays := float64(len(out)) <= probeSize*(1-c.minSaving)
	probeBufs.Put(buf)
	return pays
}

// probeBufs holds pays' output buffers: one on the stack escaped to the
// heap, 4.3 KiB of garbage per large block written (6.5 MB over a 256 MiB
// bulk fetch).
var probeBufs = sync.Pool{New: func() any { return new([probeSize + 256]byte) }}

func appendHeader(dst []byte, flags byte, rawSize int) []byte {
	start := len(dst)
	dst = append(dst, frameMagic[:]...)
	dst = append(dst, frameVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(rawSize))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// header is a parsed frame header.
type header struct {
	flags   byte
	rawSize int
	hdrLen  int
}

// parseHeader reports whether b starts with a valid frame header.
func parseHeader(b []byte) (header, bool) {
	if len(b) < 4+1+1+1+4 || !bytes.Equal(b[:4], frameMagic[:]) || b[4] != frameVersion {
		return header{}, false
	}
	flags := b[5]
	if flags != flagStored && flags != flagZstd {
		return header{}, false
	}
	n, w := binary.Uvarint(b[6:])
	if w <= 0 || n > MaxFrameRawSize {
		return header{}, false
	}
	end := 6 + w
	if len(b) < end+4 || binary.LittleEndian.Uint32(b[end:]) != crc32.Checksum(b[:end], crcTable) {
		return header{}, false
	}
	return header{flags: flags, rawSize: int(n), hdrLen: end + 4}, true
}

// rawSize returns the size of the value stored as b, without decompressing.
func rawSize(b []byte) int {
	if h, ok := parseHeader(b); ok {
		return h.rawSize
	}
	return len(b)
}

// decode returns the value stored as b. It fails only on a frame whose
// payload is corrupt.
func (c *codec) decode(b []byte) ([]byte, error) {
	h, ok := parseHeader(b)
	if !ok {
		return b, nil
	}
	payload := b[h.hdrLen:]
	switch h.flags {
	case flagStored:
		if len(payload) != h.rawSize {
			return nil, fmt.Errorf("%w: stored frame holds %d bytes, header says %d", ErrCorrupt, len(payload), h.rawSize)
		}
		return payload, nil
	default:
		out, err := c.dec.DecodeAll(payload, make([]byte, 0, h.rawSize))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if len(out) != h.rawSize {
			return nil, fmt.Errorf("%w: decompressed %d bytes, header says %d", ErrCorrupt, len(out), h.rawSize)
		}
		return out, nil
	}
}
