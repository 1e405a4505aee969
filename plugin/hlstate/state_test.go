package hlstate

import (
	"sync"
	"testing"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

func TestRecord(t *testing.T) {
	Reset()
	if Get().Loaded {
		t.Fatal("loaded before SetLoaded")
	}
	cfg := &hlconfig.Config{}
	SetLoaded(cfg)
	var wg sync.WaitGroup
	for _, n := range []string{"tiered", "bitswap", "connmgr"} {
		wg.Add(1)
		go func(n string) { defer wg.Done(); SetComponent(n, StatusIdle, "x") }(n)
	}
	wg.Wait()
	SetComponent("bitswap", StatusActive, "caps")
	s := Get()
	if !s.Loaded || s.Config != cfg {
		t.Fatal("config not recorded")
	}
	if len(s.Components) != 3 || s.Components[0].Name != "bitswap" || s.Components[0].Status != StatusActive {
		t.Fatalf("components = %+v", s.Components)
	}
}

func TestLive(t *testing.T) {
	if _, ok := Live("x"); ok {
		t.Fatal("live view before SetLive")
	}
	SetLive("x", func() any { return 42 })
	f, ok := Live("x")
	if !ok || f().(int) != 42 {
		t.Fatalf("Live(x) = %v, %v", f, ok)
	}
	SetLive("x", nil)
	if _, ok := Live("x"); ok {
		t.Fatal("live view after SetLive(nil)")
	}
}
