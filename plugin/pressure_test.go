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
	fdsHigh := health.Warning{Resource: "fds", Message: "fds at 85% of its limit"}
	fdsForecast := health.Warning{Resource: "fds:forecast", Message: "fds forecast to reach its limit in 11m"}
	diskHigh := health.Warning{Resource: "disk:/repo", Message: "disk:/repo at 90% of its limit"}
	for _, c := range []struct {
		name string
		s    health.Snapshot
		want int
	}{
		{"normal", health.Snapshot{Level: health.Normal}, 0},
		{"normal with a disk warning", health.Snapshot{Level: health.Normal, Warnings: []health.Warning{diskHigh}}, 0},
		{"elevated by a measured ratio sheds", health.Snapshot{Level: health.Elevated, Warnings: []health.Warning{fdsHigh}}, 2},
		{"elevated by ratio and forecast sheds", health.Snapshot{Level: health.Elevated, Warnings: []health.Warning{fdsForecast, fdsHigh}}, 2},
		{"elevated by a forecast alone holds", health.Snapshot{Level: health.Elevated, Warnings: []health.Warning{fdsForecast}}, 1},
		{"elevated in the hysteresis band holds", health.Snapshot{Level: health.Elevated}, 1},
		{"a full disk does not shed connections", health.Snapshot{Level: health.Elevated, Warnings: []health.Warning{fdsForecast, diskHigh}}, 1},
		{"critical", health.Snapshot{Level: health.Critical, Warnings: []health.Warning{fdsForecast}}, 3},
	} {
		if got := connMgrLevel(c.s); got != c.want {
			t.Errorf("%s: connMgrLevel = %d, want %d", c.name, got, c.want)
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
