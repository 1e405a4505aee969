package plugin

import (
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/autoscale"
	"github.com/kubo-highload/highload/autotune"
	"github.com/kubo-highload/highload/health"
	"github.com/kubo-highload/highload/plugin/hlconfig"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

func TestHealthThresholdsRefuseCrossedValues(t *testing.T) {
	ok := &hlconfig.HealthConfig{}
	if _, err := healthThresholds(ok); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, c := range []struct {
		cfg  hlconfig.HealthConfig
		want string
	}{
		{hlconfig.HealthConfig{ElevatedExitPercent: kconfig.NewOptionalInteger(90)}, "ElevatedExitPercent (90) must be below Config.Health.ElevatedPercent (80)"},
		{hlconfig.HealthConfig{CriticalPercent: kconfig.NewOptionalInteger(75)}, "CriticalPercent (75) must be above"},
		{hlconfig.HealthConfig{CriticalExitPercent: kconfig.NewOptionalInteger(96)}, "CriticalExitPercent (96) must be below"},
		{hlconfig.HealthConfig{CriticalExitPercent: kconfig.NewOptionalInteger(60)}, "must not be below"},
	} {
		_, err := healthThresholds(&c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), hlconfig.ErrPrefix) {
			t.Fatalf("%+v: error %v, want one containing %q", c.cfg, err, c.want)
		}
	}
}

func TestSpecPaths(t *testing.T) {
	spec := map[string]any{
		"type": "mount",
		"mounts": []any{
			map[string]any{"child": map[string]any{"type": "flatfs", "path": "blocks"}, "mountpoint": "/blocks"},
			map[string]any{"child": map[string]any{"type": "levelds", "path": "/abs/datastore"}, "mountpoint": "/"},
		},
	}
	got := specPaths(spec)
	sort.Strings(got)
	if len(got) != 2 || got[0] != "/abs/datastore" || got[1] != "blocks" {
		t.Fatalf("specPaths = %v", got)
	}
	if filepath.Clean("x/") != "x" {
		t.Fatal("sanity")
	}
}

func TestOnPressureWithoutMonitor(t *testing.T) {
	var mu sync.Mutex
	var got []health.Level
	onPressure(func(l health.Level) { mu.Lock(); got = append(got, l); mu.Unlock() })
	dispatchPressure(health.Critical)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != health.Normal || got[1] != health.Critical {
		t.Fatalf("subscriber saw %v, want [normal critical]", got)
	}
	if pressureLevel() != health.Normal {
		t.Fatal("level without a monitor is not normal")
	}
}

func TestKnobRegistryAndGOGC(t *testing.T) {
	before := len(registeredKnobs())
	addKnobs(func() []autotune.Knob { return []autotune.Knob{gogcKnob()} })
	ks := registeredKnobs()
	if len(ks) != before+1 {
		t.Fatalf("%d knobs after adding one to %d", len(ks), before)
	}
	k := ks[len(ks)-1]
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	orig := k.Get()
	defer k.Set(orig)
	if err := k.Set(150); err != nil {
		t.Fatal(err)
	}
	if k.Get() != 150 {
		t.Fatalf("GOGC reads %g after Set(150)", k.Get())
	}
}

func TestIsolationIsProcessWide(t *testing.T) {
	iso := isolation()
	if iso != isolation() {
		t.Fatal("two isolators")
	}
	for i := 0; i < 5; i++ {
		iso.Report("test/part", errors.New("boom"))
	}
	if iso.Allow("test/part") {
		t.Fatal("a part that failed 5 times in a row is not isolated")
	}
	f, ok := hlstate.Live("isolation")
	if !ok {
		t.Fatal("isolation has no live view")
	}
	st, _ := f().([]autoscale.Status)
	if len(st) != 1 || st[0].State != autoscale.Isolated || st[0].LastError != "boom" {
		t.Fatalf("live view %+v", st)
	}
}
