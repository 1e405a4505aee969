//go:build unix

package health

import "syscall"

// fdLimit returns the soft RLIMIT_NOFILE.
func fdLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return uint64(r.Cur), nil
}
