package workload

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSetting(t *testing.T) {
	cases := []struct {
		in   string
		want Setting
	}{
		{"Plugins.Plugins.highload.Config.Bitswap.Prefetch=1024", Setting{"Plugins.Plugins.highload.Config.Bitswap.Prefetch", 1024.0}},
		{"A.B=true", Setting{"A.B", true}},
		{`A="1MiB"`, Setting{"A", "1MiB"}},
		{"A=1MiB", Setting{"A", "1MiB"}}, // not JSON: a string
		{`A={"x":1}`, Setting{"A", map[string]any{"x": 1.0}}},
	}
	for _, c := range cases {
		got, err := ParseSetting(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseSetting(%q) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "A", "=1", "A..B=1", ".A=1"} {
		if _, err := ParseSetting(bad); err == nil {
			t.Errorf("ParseSetting(%q): no error", bad)
		}
	}
}

func TestVariantApply(t *testing.T) {
	v := Variant{Config: []Setting{
		{"Plugins.Plugins.highload.Config.Bitswap.Prefetch", 512.0},
		{"Datastore.StorageMax", "20GB"},
	}}
	cfg := map[string]any{
		"Datastore": map[string]any{"StorageMax": "10GB", "GCPeriod": "1h"},
		"Plugins":   map[string]any{"Plugins": nil},
	}
	edited := false
	edit := v.Edit(func(cfg map[string]any) error { edited = true; return nil })
	if err := edit(cfg); err != nil {
		t.Fatal(err)
	}
	if !edited {
		t.Error("the workload's own edit did not run")
	}
	want := map[string]any{
		"Datastore": map[string]any{"StorageMax": "20GB", "GCPeriod": "1h"},
		"Plugins": map[string]any{"Plugins": map[string]any{"highload": map[string]any{
			"Config": map[string]any{"Bitswap": map[string]any{"Prefetch": 512.0}}}}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config after Apply = %#v\nwant %#v", cfg, want)
	}

	bad := Variant{Config: []Setting{{"Datastore.StorageMax.X", 1.0}}}
	if err := bad.Apply(cfg); err == nil || !strings.Contains(err.Error(), "Datastore.StorageMax is not an object") {
		t.Errorf("Apply through a string: err %v, want one naming Datastore.StorageMax", err)
	}
	if (Variant{}).Edit(nil) != nil {
		t.Error("Edit with no settings and no edit should be nil")
	}
}
