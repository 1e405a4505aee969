package blocklog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// A hint file lists a sealed segment's committed records without values,
// so Open reads keys and offsets instead of the whole segment:
//
//	magic "BLKH" | version | 3 zero bytes | segment generation (uint64) | segment size (uint64)
//	entries: kind (1: put, 2: delete) | key length (uint16) | value length (uint32) | offset (uint32) | key
//	crc32c of everything before it (4)
//
// A hint is used only if its generation and size match the segment's, so a
// compaction that replaced the segment makes an old hint stale, not wrong.

const (
	hintMagic      = "BLKH"
	hintHeaderSize = 24
	hintEntrySize  = 11
)

// maxHintBuffer bounds the hint entries the committer keeps for the active
// segment (see segment.hint). A segment of many small records passes it and
// has its hint written by a scan at seal instead, as a recovered segment does.
// A variable so tests can lower it.
var maxHintBuffer = 2 << 20

// appendHintEntry appends one hint entry: a put or delete of key, whose
// record starts at off and holds a value of vlen bytes.
func appendHintEntry[K string | []byte](buf []byte, kind byte, key K, vlen int, off int64) []byte {
	var e [hintEntrySize]byte
	e[0] = kind
	binary.LittleEndian.PutUint16(e[1:], uint16(len(key)))
	binary.LittleEndian.PutUint32(e[3:], uint32(vlen))
	binary.LittleEndian.PutUint32(e[7:], uint32(off))
	buf = append(buf, e[:]...)
	return append(buf, key...)
}

// appendHintEntries appends the hint entries of group g, written at base, to
// buf: one per put or delete, a batch's records as plain puts and deletes
// (the group was written whole), commit records left out.
func appendHintEntries(buf []byte, base int64, g *group) []byte {
	for _, o := range g.ops {
		kind := o.kind
		switch kind {
		case kindCommit:
			continue
		case kindTxPut, kindTxDel:
			kind -= kindTxPut - kindPut
		}
		buf = appendHintEntry(buf, kind, o.key, len(o.val), base+int64(o.off))
	}
	return buf
}

// noteHint adds group g, just written at base, to the active segment's
// hint entries, or gives them up past maxHintBuffer. Committer only.
func (s *segment) noteHint(base int64, g *group) {
	if !s.hintLive {
		return
	}
	s.hint = appendHintEntries(s.hint, base, g)
	if len(s.hint) > maxHintBuffer {
		s.hint, s.hintLive = nil, false
	}
}

// noteHintEntry adds one record's hint entry, as noteHint does for a group;
// recovery calls it for the active segment's records.
func (s *segment) noteHintEntry(kind byte, key string, vlen int, off int64) {
	s.hint = appendHintEntry(s.hint, kind, key, vlen, off)
	if len(s.hint) > maxHintBuffer {
		s.hint, s.hintLive = nil, false
	}
}

// writeHint writes sealed segment s's hint file through a temporary file
// and a rename. The entries are those noted as the segment was written (and
// replayed, for the active segment found at Open) when they are all there;
// otherwise (a sealed segment found without its hint at Open, one of many
// small records, or a compacted one) they come from a scan of the segment
// that checks every record.
func writeHint(dir string, s *segment) error {
	size := s.size.Load()
	buf := make([]byte, hintHeaderSize, hintHeaderSize+len(s.hint)+4)
	copy(buf, hintMagic)
	buf[4] = formatVersion
	binary.LittleEndian.PutUint64(buf[8:], s.gen)
	binary.LittleEndian.PutUint64(buf[16:], uint64(size))
	if s.hintLive {
		buf = append(buf, s.hint...)
	} else {
		var err error
		if buf, err = appendScannedHint(buf, s, size); err != nil {
			return err
		}
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	final := dir + "/" + hintName(s.id)
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, buf, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// appendScannedHint scans sealed segment s up to size, checking every
// record, and appends its hint entries to buf.
func appendScannedHint(buf []byte, s *segment, size int64) ([]byte, error) {
	var txStart = -1 // start in buf of an open batch's entries
	end, bad, err := scanSegment(s.f, size, func(off int64, r record) error {
		kind := r.kind
		switch kind {
		case kindCommit:
			txStart = -1
			return nil
		case kindTxPut, kindTxDel:
			if txStart < 0 {
				txStart = len(buf)
			}
			kind -= kindTxPut - kindPut
		}
		buf = appendHintEntry(buf, kind, r.key, len(r.val), off)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if bad != nil || end != size || txStart >= 0 {
		return nil, fmt.Errorf("segment %s does not end cleanly at %d (%v)", s.path, end, bad)
	}
	return buf, nil
}

// loadHint replays segment s from its hint file. It returns false (and
// changes nothing) if the hint is stale or damaged.
func (d *Datastore) loadHint(s *segment) (bool, error) {
	b, err := os.ReadFile(d.path(hintName(s.id)))
	if err != nil {
		return false, err
	}
	entries, err := parseHint(b, s.gen, s.size.Load())
	if err != nil {
		return false, err
	}
	r := &replayer{d: d, s: s}
	for _, e := range entries {
		r.apply(e.off, e.kind, e.key, e.vlen)
	}
	return true, nil
}

type hintEntry struct {
	kind byte
	key  string
	vlen int
	off  int64
}

var errStaleHint = errors.New("hint belongs to an older version of the segment")

// parseHint decodes and checks a hint file for a segment of generation gen
// and size bytes.
func parseHint(b []byte, gen uint64, size int64) ([]hintEntry, error) {
	if len(b) < hintHeaderSize+4 || string(b[:4]) != hintMagic || b[4] != formatVersion {
		return nil, errors.New("not a hint file of this version")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("hint checksum mismatch")
	}
	if binary.LittleEndian.Uint64(b[8:]) != gen || int64(binary.LittleEndian.Uint64(b[16:])) != size {
		return nil, errStaleHint
	}
	var out []hintEntry
	for p := hintHeaderSize; p < len(body); {
		if len(body)-p < hintEntrySize {
			return nil, errors.New("hint entry truncated")
		}
		kind := body[p]
		kl := int(binary.LittleEndian.Uint16(body[p+1:]))
		vl := int(binary.LittleEndian.Uint32(body[p+3:]))
		off := int64(binary.LittleEndian.Uint32(body[p+7:]))
		p += hintEntrySize
		if len(body)-p < kl || (kind != kindPut && kind != kindDelete) ||
			off < segHeaderSize || off+int64(recordLen(kl, vl)) > size {
			return nil, fmt.Errorf("hint entry at %d is invalid", p-hintEntrySize)
		}
		out = append(out, hintEntry{kind: kind, key: string(body[p : p+kl]), vlen: vl, off: off})
		p += kl
	}
	return out, nil
}
