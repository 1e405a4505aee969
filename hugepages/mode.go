package hugepages

import (
	"fmt"
	"os"
	"strings"
)

// The system-wide THP modes, as /sys/kernel/mm/transparent_hugepage/enabled
// names them.
const (
	// ModeAlways: the kernel uses huge pages for all anonymous memory.
	ModeAlways = "always"
	// ModeMadvise: only in mappings marked with MADV_HUGEPAGE.
	ModeMadvise = "madvise"
	// ModeNever: not at all.
	ModeNever = "never"
)

// EnabledPath is the sysfs file that holds the system's THP mode.
const EnabledPath = "/sys/kernel/mm/transparent_hugepage/enabled"

// SystemMode returns the system's THP mode read from EnabledPath.
func SystemMode() (string, error) {
	b, err := os.ReadFile(EnabledPath)
	if err != nil {
		return "", fmt.Errorf("hugepages: THP mode: %w", err)
	}
	return ParseMode(string(b))
}

// ParseMode returns the selected mode of a sysfs THP setting such as
// "always [madvise] never" (the selected one is in brackets).
func ParseMode(s string) (string, error) {
	for _, f := range strings.Fields(s) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			switch m := f[1 : len(f)-1]; m {
			case ModeAlways, ModeMadvise, ModeNever:
				return m, nil
			default:
				return "", fmt.Errorf("hugepages: unknown THP mode %q in %q", m, strings.TrimSpace(s))
			}
		}
	}
	return "", fmt.Errorf("hugepages: no selected THP mode (in brackets) in %q", strings.TrimSpace(s))
}
