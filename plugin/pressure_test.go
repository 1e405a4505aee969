package plugin

import (
	"context"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/kubo-highload/highload/datastore/tiered"
	"github.com/kubo-highload/highload/health"
)

func TestConnMgrLevel(t *testing.T) {
	for l, want := range map[health.Level]int{health.Normal: 0, health.Elevated: 2, health.Critical: 3} {
		if got := connMgrLevel(l); got != want {
			t.Errorf("connMgrLevel(%s) = %d, want %d", l, got, want)
		}
	}
}

func TestTieredPressureShrinksAndRestores(t *testing.T) {
	const capacity = 64 << 20
	d, err := tiered.Open(context.Background(), tiered.Options{
		MemoryCapacity: capacity,
		Tiers:          []tiered.Tier{{Name: "fast", Child: dssync.MutexWrap(ds.NewMapDatastore())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	prev := currentTiered.Swap(d)
	defer currentTiered.Store(prev)

	for _, step := range []struct {
		l    health.Level
		want uint64
	}{
		{health.Elevated, capacity / 2},
		{health.Critical, capacity / 8},
		{health.Elevated, capacity / 2},
		{health.Normal, capacity},
	} {
		applyTieredPressure(step.l)
		if got := d.MemoryBudget(); got != step.want {
			t.Fatalf("after %s: budget %d, want %d", step.l, got, step.want)
		}
	}
}
