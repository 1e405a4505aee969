package hugepages

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mapping is one address range of /proc/self/maps.
type mapping struct {
	start, end uintptr
}

// mapLine is one parsed line of /proc/<pid>/maps.
type mapLine struct {
	mapping
	perms string
	anon  bool // no file behind it and no special name like [stack]
}

// heapMappings returns the Go heap's writable mappings among the lines of a
// /proc/<pid>/maps file. The runtime lays its heap arenas out contiguously
// from a (randomized) base, as anonymous mappings: writable where mapped,
// PROT_NONE (---p) where only reserved. So the heap is the run of adjacent
// anonymous mappings around probe, the address of a heap object; the
// writable ones of that run are returned. A line that cannot be parsed is an
// error that names it, and so is a probe outside any anonymous mapping.
func heapMappings(r io.Reader, probe uintptr) ([]mapping, error) {
	var lines []mapLine
	at := -1
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// start-end perms offset dev inode [path]
		f := strings.Fields(line)
		if len(f) < 5 {
			return nil, fmt.Errorf("hugepages: maps line %q: want at least 5 fields", line)
		}
		a, b, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("hugepages: maps line %q: no address range", line)
		}
		start, err1 := strconv.ParseUint(a, 16, 64)
		end, err2 := strconv.ParseUint(b, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("hugepages: maps line %q: bad address range", line)
		}
		l := mapLine{
			mapping: mapping{start: uintptr(start), end: uintptr(end)},
			perms:   f[1],
			anon:    f[4] == "0" && (len(f) == 5 || strings.HasPrefix(f[5], "[anon:")),
		}
		if l.start <= probe && probe < l.end {
			at = len(lines)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hugepages: reading maps: %w", err)
	}
	heapPart := func(l mapLine) bool { return l.anon && (l.perms == "rw-p" || l.perms == "---p") }
	if at < 0 || !heapPart(lines[at]) || lines[at].perms != "rw-p" {
		return nil, fmt.Errorf("hugepages: the heap object at %#x is not in a writable anonymous mapping", probe)
	}
	lo, hi := at, at
	for lo > 0 && heapPart(lines[lo-1]) && lines[lo-1].end == lines[lo].start {
		lo--
	}
	for hi+1 < len(lines) && heapPart(lines[hi+1]) && lines[hi+1].start == lines[hi].end {
		hi++
	}
	var out []mapping
	for _, l := range lines[lo : hi+1] {
		if l.perms == "rw-p" {
			out = append(out, l.mapping)
		}
	}
	return out, nil
}

// subtract returns the parts of ms outside every range of cut. Both lists
// are page-aligned address ranges, so the parts are too.
func subtract(ms, cut []mapping) []mapping {
	var out []mapping
	for _, m := range ms {
		parts := []mapping{m}
		for _, c := range cut {
			var next []mapping
			for _, p := range parts {
				if c.end <= p.start || p.end <= c.start {
					next = append(next, p)
					continue
				}
				if p.start < c.start {
					next = append(next, mapping{p.start, c.start})
				}
				if c.end < p.end {
					next = append(next, mapping{c.end, p.end})
				}
			}
			parts = next
		}
		out = append(out, parts...)
	}
	return out
}

// parseSmapsKB returns the value in bytes of the "key:  N kB" line of a
// /proc/<pid>/smaps_rollup file, and whether it was there.
func parseSmapsKB(r io.Reader, key string) (uint64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
}
