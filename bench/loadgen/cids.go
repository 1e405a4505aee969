package loadgen

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	mrand "math/rand/v2"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// RandomCID returns a CIDv1 (raw codec, sha2-256) of 32 random bytes: a CID
// that no node holds.
func RandomCID() cid.Cid {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return cidOfBytes(b[:])
}

// SeededCIDs returns n CIDs like RandomCID, but derived from seed, so a
// test can regenerate them.
func SeededCIDs(seed uint64, n int) []cid.Cid {
	r := mrand.New(mrand.NewPCG(seed, 0x6c6f616467656e))
	out := make([]cid.Cid, n)
	var b [16]byte
	for i := range out {
		binary.LittleEndian.PutUint64(b[:8], r.Uint64())
		binary.LittleEndian.PutUint64(b[8:], r.Uint64())
		out[i] = cidOfBytes(b[:])
	}
	return out
}

func cidOfBytes(b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte sha2-256 digest always encodes
	}
	return cid.NewCidV1(cid.Raw, h)
}

// FloodWantlist builds a full wantlist message of the given CIDs as a
// misbehaving client would send it: want-block and want-have alternating,
// every entry asking for a DONT_HAVE, priorities descending.
func FloodWantlist(cids []cid.Cid) bsmsg.BitSwapMessage {
	m := bsmsg.New(true)
	for i, c := range cids {
		t := pb.Message_Wantlist_Block
		if i%2 == 1 {
			t = pb.Message_Wantlist_Have
		}
		m.AddEntry(c, int32(len(cids)-i), t, true)
	}
	return m
}
