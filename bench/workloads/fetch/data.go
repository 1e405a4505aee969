package fetch

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// randomFile returns size deterministic pseudo-random bytes, generated as
// they are read (ChaCha8, a few GB/s), for file index idx of one round of
// one workload and variant.
func randomFile(workloadID, variant string, round, idx int, size int64) io.Reader {
	seed := sha256.Sum256(fmt.Appendf(nil, "kubo-highload bench/%s/%s/round-%d/file-%d", workloadID, variant, round, idx))
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// chunker is Kubo's chunker argument for fixed-size chunks.
func chunker(size int) string { return fmt.Sprintf("size-%d", size) }
