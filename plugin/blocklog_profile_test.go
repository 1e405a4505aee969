package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/datastore/tiered"
)

func TestLogProfileInsertsLogTierBeforeFlatfs(t *testing.T) {
	c := &kconfig.Config{Datastore: kconfig.DefaultDatastoreConfig()}
	if err := applyLogProfile(c); err != nil {
		t.Fatal(err)
	}
	if !kconfig.Profiles[LogProfileName].InitOnly {
		t.Fatal("the log profile changes the disk identity: it must be init-only")
	}
	b, _ := json.Marshal(c.Datastore.Spec)
	var spec map[string]any
	json.Unmarshal(b, &spec)
	blocks := spec["mounts"].([]any)[0].(map[string]any)
	parsed, err := tiered.ParseSpec(blocks)
	if err != nil {
		t.Fatalf("profile wrote a bad spec: %v", err)
	}
	_ = parsed
	tiers := blocks["tiers"].([]any)
	if len(tiers) != 3 {
		t.Fatalf("want memory, log, flatfs; got %d tiers: %s", len(tiers), b)
	}
	logChild := tiers[1].(map[string]any)["child"].(map[string]any)
	if logChild["type"] != BlocklogTypeName || logChild["sync"] != true || logChild["preallocMaxGroup"] != "192KiB" {
		t.Fatalf("tier 1 is %v", logChild)
	}
	if tiers[2].(map[string]any)["child"].(map[string]any)["type"] != "flatfs" {
		t.Fatalf("the last tier must stay flatfs: %s", b)
	}
	// Kubo's datastore config accepts the whole /blocks spec (children
	// included) and its identity names both durable tiers.
	dc, err := parseTieredConfig(blocks)
	if err != nil {
		t.Fatal(err)
	}
	id := dc.DiskSpec().String()
	if !strings.Contains(id, "blocklog") || !strings.Contains(id, "flatfs") {
		t.Fatalf("identity %s", id)
	}
	// The plugin config is written too (it is the highload profile plus).
	if _, ok := c.Plugins.Plugins[Name]; !ok {
		t.Fatal("highload plugin config not written")
	}
	// Applying again (e.g. --profile=highload,highload-log) keeps one log tier.
	if err := applyLogProfile(c); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Datastore.Spec["mounts"].([]any)[0].(map[string]any)["tiers"].([]any)); n != 3 {
		t.Fatalf("second apply: %d tiers", n)
	}
}

func TestLogProfileRefusesUntieredLayout(t *testing.T) {
	c := &kconfig.Config{Datastore: kconfig.DefaultDatastoreConfig()}
	c.Datastore.Spec = map[string]any{"type": "pebbleds", "path": "pebbleds"}
	err := applyLogProfile(c)
	if err == nil || !strings.Contains(err.Error(), "no tiered /blocks mount") {
		t.Fatalf("err = %v", err)
	}
}
