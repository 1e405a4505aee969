//go:build !unix

package health

import "errors"

// fdLimit is unknown where there is no RLIMIT_NOFILE.
func fdLimit() (uint64, error) {
	return 0, errors.New("no RLIMIT_NOFILE on this platform")
}
