package blocklog

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// vecOp is a vectored positional transfer: unix.Preadv or unix.Pwritev.
type vecOp func(fd int, iov [][]byte, off int64) (int, error)

// vecFull runs op on rc's file until every byte of iov has moved, starting
// at off: it retries after EINTR and resumes a short transfer where it
// stopped. A call that moves nothing returns short (io.ErrShortWrite for a
// write, io.ErrUnexpectedEOF for a read). It consumes iov's slices and
// returns the offset after the last byte moved.
func vecFull(rc syscall.RawConn, op vecOp, iov [][]byte, off int64, short error) (int64, error) {
	for len(iov) > 0 {
		var n int
		var err error
		if cerr := rc.Control(func(fd uintptr) { n, err = op(int(fd), iov, off) }); cerr != nil {
			return off, cerr
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return off, err
		}
		if n == 0 {
			return off, short
		}
		off += int64(n)
		for n > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return off, nil
}
