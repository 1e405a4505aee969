package blocklog

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// vecFull resumes after EINTR and after short transfers that end inside an
// iovec, skips empty iovecs, and reports a call that moved nothing.
func TestVecFullResumesShortTransfers(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "v"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	// A pwritev that is interrupted once and then writes at most 3 bytes.
	stingy := func(fd int, iov [][]byte, off int64) (int, error) {
		calls++
		if calls == 1 {
			return 0, unix.EINTR
		}
		var first [][]byte
		left := 3
		for _, b := range iov {
			if left == 0 {
				break
			}
			k := min(left, len(b))
			first = append(first, b[:k])
			left -= k
		}
		return unix.Pwritev(fd, first, off)
	}
	iov := [][]byte{[]byte("ab"), nil, []byte("cdefg"), []byte("h")}
	end, err := vecFull(rc, stingy, iov, 10, io.ErrShortWrite)
	if err != nil {
		t.Fatal(err)
	}
	if end != 18 {
		t.Fatalf("end offset %d, want 18", end)
	}
	if calls != 4 { // EINTR, then 3+3+2 bytes
		t.Fatalf("%d calls, want 4", calls)
	}
	got := make([]byte, 8)
	if _, err := f.ReadAt(got, 10); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte("abcdefgh")) {
		t.Fatalf("file holds %q, want %q", got, "abcdefgh")
	}
	nothing := func(int, [][]byte, int64) (int, error) { return 0, nil }
	if _, err := vecFull(rc, nothing, [][]byte{[]byte("x")}, 0, io.ErrUnexpectedEOF); err != io.ErrUnexpectedEOF {
		t.Fatalf("a call moving nothing gave %v, want io.ErrUnexpectedEOF", err)
	}
}
