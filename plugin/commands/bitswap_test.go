package commands

import (
	"bytes"
	"strings"
	"testing"

	cid "github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kubo-highload/highload/exchange"
)

func TestWriteBitswap(t *testing.T) {
	p, err := exchange.New(exchange.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetPriorityPeers([]peer.ID{"vip"})
	p.Filter("vip", cid.Undef)
	s := p.Stats()
	var buf bytes.Buffer
	if err := writeBitswap(&buf, &s); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"priority", "good", "unknown", "Peer breakers: closed 1", "Trips: flood 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 80 {
			t.Errorf("line over 80 columns: %q", line)
		}
	}
}
