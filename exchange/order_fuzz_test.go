package exchange

import (
	"fmt"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	format "github.com/ipfs/go-ipld-format"
)

// FuzzDagpbLinks: the server reads the links of every dag-pb block it
// sends, and a peer can have it store and serve any bytes under a dag-pb
// CID (only the hash is checked on a fetch). On any input dagpbLinks must
// not panic and must keep to its limit. Where boxo's own dag-pb decoder
// accepts the bytes, the node it decodes, encoded again (canonically), must
// give the same link targets in the same order as boxo's decoder reads
// from those bytes. (On the raw bytes the two
// may differ: the decoder takes a CID from a link target that carries
// more bytes after it, and dagpbLinks keys the whole target; such a link's
// child is then only not served first, as the order is a hint.)
func FuzzDagpbLinks(f *testing.F) {
	nd := merkledag.NodeWithData([]byte("data"))
	for k := range 3 {
		if err := nd.AddRawLink(fmt.Sprint("l", k), &format.Link{Cid: testCID(k + 1), Size: 9}); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(nd.RawData(), 1024)
	f.Add(nd.RawData(), 2)
	f.Add([]byte{0x12, 0x05, 0x0a}, 8)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		limit = max(0, limit%2048)
		got := dagpbLinks(data, limit)
		if len(got) > limit {
			t.Fatalf("%d links under a limit of %d", len(got), limit)
		}
		pn, err := merkledag.DecodeProtobuf(data)
		if err != nil {
			return
		}
		canon := merkledag.NodeWithData(pn.Data())
		for _, l := range pn.Links() {
			if err := canon.AddRawLink(l.Name, l); err != nil {
				t.Fatal(err)
			}
		}
		again, err := merkledag.DecodeProtobuf(canon.RawData())
		if err != nil {
			t.Fatalf("boxo cannot decode its own encoding of %x: %v", data, err)
		}
		var want []uint64
		for _, l := range again.Links() {
			if len(want) < limit {
				want = append(want, linkKey(l.Cid))
			}
		}
		if got := dagpbLinks(canon.RawData(), limit); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("dagpbLinks of the node encoded again = %v, boxo's decoder finds %v", got, want)
		}
	})
}
