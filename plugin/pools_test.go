package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/kubo-highload/highload/autoscale"
)

func TestRegisterPoolListsUntilDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	registerPool(ctx, "test/pool", func() autoscale.PoolStats { return autoscale.PoolStats{Size: 3, Queued: 2} })
	find := func() (PoolStatus, bool) {
		for _, p := range livePools().([]PoolStatus) {
			if p.Name == "test/pool" {
				return p, true
			}
		}
		return PoolStatus{}, false
	}
	if p, ok := find(); !ok || p.Size != 3 || p.Queued != 2 {
		t.Fatalf("registered pool: %+v, %v", p, ok)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := find(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool is still listed after its context ended")
		}
		time.Sleep(time.Millisecond)
	}
}
