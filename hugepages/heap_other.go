//go:build !(linux && (amd64 || arm64))

package hugepages

func readHeap() ([]mapping, error) { return nil, ErrUnsupported }

func advise([]mapping, bool) (uint64, error) { return 0, ErrUnsupported }

func reserveHeap(int) {}

func anonHugePages() uint64 { return 0 }

func resident([]mapping) ([]mapping, error) { return nil, ErrUnsupported }
