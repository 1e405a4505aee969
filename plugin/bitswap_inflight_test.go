package plugin

import (
	"testing"

	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

func TestOutstandingCap(t *testing.T) {
	own := hlconfig.BitswapConfig{MaxOutstandingBytesPerPeer: &kconfig.OptionalBytes{}}
	if err := own.MaxOutstandingBytesPerPeer.UnmarshalJSON([]byte(`"4MiB"`)); err != nil {
		t.Fatal(err)
	}
	kubo := &kconfig.Config{}
	kubo.Internal.Bitswap = &kconfig.InternalBitswap{MaxOutstandingBytesPerPeer: *kconfig.NewOptionalInteger(2 << 20)}
	for _, tc := range []struct {
		name string
		c    *hlconfig.BitswapConfig
		kc   *kconfig.Config
		want int
	}{
		{"nothing set", nil, nil, 1 << 20},
		{"Kubo's Internal.Bitswap", &hlconfig.BitswapConfig{}, kubo, 2 << 20},
		{"ours wins", &own, kubo, 4 << 20},
	} {
		if got := outstandingCap(tc.c, tc.kc); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
