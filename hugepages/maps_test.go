package hugepages

import (
	"strings"
	"testing"
)

func TestParseModeReadsTheSelectedMode(t *testing.T) {
	for in, want := range map[string]string{
		"always [madvise] never\n": ModeMadvise,
		"[always] madvise never":   ModeAlways,
		"always madvise [never]":   ModeNever,
	} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{
		"always madvise never": "no selected THP mode",
		"[sometimes] never":    `unknown THP mode "sometimes"`,
		"":                     "no selected THP mode",
	} {
		if _, err := ParseMode(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseMode(%q) error = %v; want one containing %q", in, err, wantErr)
		}
	}
}

func TestHeapMappingsTakesTheAnonymousRunAroundTheProbe(t *testing.T) {
	maps := `00400000-00c00000 r-xp 00000000 fd:01 123 /usr/bin/ipfs
3e4b00000000-3e4b7c400000 rw-p 00000000 00:00 0
3e4b7c400000-3e4b7c800000 ---p 00000000 00:00 0
3e4b7c800000-3e4b80800000 rw-p 00000000 00:00 0
3e4b80800000-3e4b84000000 ---p 00000000 00:00 0
3e4b84000000-3e4b88000000 rw-p 00000000 00:00 0 [anon: Go: heap]
3e4b88000000-3e4b89000000 rw-p 00000000 fd:01 77 /tmp/mapped-file
3e4b89000000-3e4b8a000000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`
	// The first line after the binary is adjacent too: a run is every
	// adjacent anonymous mapping, and the file mapping ends it above.
	want := []mapping{{0x3e4b00000000, 0x3e4b7c400000}, {0x3e4b7c800000, 0x3e4b80800000}, {0x3e4b84000000, 0x3e4b88000000}}
	for _, probe := range []uintptr{0x3e4b7c800010, 0x3e4b84000000, 0x3e4b00000000} {
		got, err := heapMappings(strings.NewReader(maps), probe)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("probe %#x: got %x, want %x", probe, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("probe %#x: got %x, want %x", probe, got, want)
			}
		}
	}
	for _, probe := range []uintptr{0x3e4b7c400010, 0x3e4b88000010, 0x500000, 0x10} {
		if _, err := heapMappings(strings.NewReader(maps), probe); err == nil || !strings.Contains(err.Error(), "not in a writable anonymous mapping") {
			t.Errorf("probe %#x (reserved, file, text or unmapped): error %v; want one saying so", probe, err)
		}
	}
}

func TestHeapMappingsNamesTheLineItCannotRead(t *testing.T) {
	for _, bad := range []string{
		"c000000000 rw-p 00000000 00:00 0",
		"c000000000-zz rw-p 00000000 00:00 0",
		"c004000000-c000000000 rw-p 00000000 00:00 0",
		"c000000000-c004000000 rw-p",
	} {
		_, err := heapMappings(strings.NewReader(bad+"\n"), 0xc000000010)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("heapMappings(%q) error = %v; want one quoting the line", bad, err)
		}
	}
}

func TestParseSmapsKBReadsOneKey(t *testing.T) {
	rollup := "Rss:              147408 kB\nAnonHugePages:     43008 kB\nBroken:   12 MB\n"
	if n, ok := parseSmapsKB(strings.NewReader(rollup), "AnonHugePages"); !ok || n != 43008<<10 {
		t.Errorf("AnonHugePages = %d, %v; want %d", n, ok, 43008<<10)
	}
	if _, ok := parseSmapsKB(strings.NewReader(rollup), "Broken"); ok {
		t.Error("a value not in kB was read")
	}
	if _, ok := parseSmapsKB(strings.NewReader(rollup), "Missing"); ok {
		t.Error("a missing key was read")
	}
}

func TestSubtractLeavesWhatNoCutCovers(t *testing.T) {
	ms := []mapping{{0x1000, 0x9000}, {0x10000, 0x12000}}
	cut := []mapping{{0x0, 0x2000}, {0x4000, 0x5000}, {0x8000, 0x11000}}
	got := subtract(ms, cut)
	want := []mapping{{0x2000, 0x4000}, {0x5000, 0x8000}, {0x11000, 0x12000}}
	if len(got) != len(want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %x, want %x", got, want)
		}
	}
	if got := subtract(ms, nil); len(got) != 2 || got[0] != ms[0] || got[1] != ms[1] {
		t.Errorf("no cut: got %x, want %x", got, ms)
	}
	if got := subtract(ms, []mapping{{0, 0x20000}}); len(got) != 0 {
		t.Errorf("all cut: got %x, want none", got)
	}
}
