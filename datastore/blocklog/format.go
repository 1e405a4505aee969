package blocklog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk format (all integers little-endian).
//
// A segment file starts with a 16-byte header:
//
//	magic "BLKL" | version (1 byte) | 3 zero bytes | generation (uint64)
//
// then records, back to back:
//
//	crc32c (4) | kind (1) | key length (uint16) | value length (uint32) | key | value
//
// The CRC (Castagnoli) covers everything after itself: kind, lengths, key and
// value. A hint file (see hint.go) lists a sealed segment's records without
// their values.

const (
	segMagic      = "BLKL"
	formatVersion = 1
	segHeaderSize = 16
	recHeaderSize = 11

	// MaxKeyLen is the longest key a record can hold.
	MaxKeyLen = 1<<16 - 1
	// MaxValueLen is the largest value the store accepts (256 MiB).
	MaxValueLen = 256 << 20
)

// Record kinds.
const (
	kindPut    byte = 1 // a put that is committed by itself
	kindDelete byte = 2 // a tombstone that is committed by itself
	kindTxPut  byte = 3 // a batch's put, visible only once its commit record is read
	kindTxDel  byte = 4 // a batch's delete, likewise
	kindCommit byte = 5 // commits the preceding kindTx* records; value = their count (uint32)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn is returned by decodeRecord when the buffer ends inside a record.
var errTorn = errors.New("record truncated")

// recordLen is the encoded length of a record.
func recordLen(keyLen, valLen int) int { return recHeaderSize + keyLen + valLen }

// appendRecord appends one encoded record to buf.
func appendRecord(buf []byte, kind byte, key string, val []byte) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, kind, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(buf[start+5:], uint16(len(key)))
	binary.LittleEndian.PutUint32(buf[start+7:], uint32(len(val)))
	buf = append(buf, key...)
	buf = append(buf, val...)
	binary.LittleEndian.PutUint32(buf[start:], crc32.Checksum(buf[start+4:], castagnoli))
	return buf
}

// appendHeader appends a record's header and key to buf; the value, which
// follows them on disk, is only read for the checksum.
func appendHeader(buf []byte, kind byte, key string, val []byte) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, kind, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(buf[start+5:], uint16(len(key)))
	binary.LittleEndian.PutUint32(buf[start+7:], uint32(len(val)))
	buf = append(buf, key...)
	crc := crc32.Update(crc32.Checksum(buf[start+4:], castagnoli), castagnoli, val)
	binary.LittleEndian.PutUint32(buf[start:], crc)
	return buf
}

// record is a decoded record; key and val alias the decoded buffer.
type record struct {
	kind byte
	key  []byte
	val  []byte
	size int // encoded length
}

// decodeHeader reads a record header: kind and lengths. It returns an error
// for an unknown kind or impossible lengths, errTorn if b is too short.
func decodeHeader(b []byte) (kind byte, keyLen, valLen int, err error) {
	if len(b) < recHeaderSize {
		return 0, 0, 0, errTorn
	}
	kind = b[4]
	keyLen = int(binary.LittleEndian.Uint16(b[5:]))
	valLen = int(binary.LittleEndian.Uint32(b[7:]))
	switch kind {
	case kindPut, kindTxPut:
	case kindDelete, kindTxDel:
		if valLen != 0 {
			return 0, 0, 0, fmt.Errorf("tombstone with a %d-byte value", valLen)
		}
	case kindCommit:
		if valLen != 4 || keyLen != 0 {
			return 0, 0, 0, fmt.Errorf("commit record with key length %d, value length %d", keyLen, valLen)
		}
	default:
		return 0, 0, 0, fmt.Errorf("unknown record kind %d", kind)
	}
	if valLen > MaxValueLen {
		return 0, 0, 0, fmt.Errorf("value length %d above the maximum %d", valLen, MaxValueLen)
	}
	return kind, keyLen, valLen, nil
}

// decodeRecord decodes the record at the start of b and checks its CRC. It
// returns errTorn if b ends inside the record, another error if the record
// is corrupt.
func decodeRecord(b []byte) (record, error) {
	kind, kl, vl, err := decodeHeader(b)
	if err != nil {
		return record{}, err
	}
	n := recordLen(kl, vl)
	if len(b) < n {
		return record{}, errTorn
	}
	if got, want := crc32.Checksum(b[4:n], castagnoli), binary.LittleEndian.Uint32(b); got != want {
		return record{}, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return record{kind: kind, key: b[recHeaderSize : recHeaderSize+kl], val: b[recHeaderSize+kl : n], size: n}, nil
}

// segHeader encodes a segment file header.
func segHeader(gen uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	b[4] = formatVersion
	binary.LittleEndian.PutUint64(b[8:], gen)
	return b
}

// parseSegHeader checks a segment header and returns its generation.
func parseSegHeader(b []byte) (uint64, error) {
	if len(b) < segHeaderSize {
		return 0, fmt.Errorf("header truncated (%d bytes)", len(b))
	}
	if string(b[:4]) != segMagic {
		return 0, fmt.Errorf("bad magic %q (not a blocklog segment)", b[:4])
	}
	if b[4] != formatVersion {
		return 0, fmt.Errorf("format version %d, this build reads %d", b[4], formatVersion)
	}
	return binary.LittleEndian.Uint64(b[8:]), nil
}
