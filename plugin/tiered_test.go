package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	kconfig "github.com/ipfs/kubo/config"
	kplugin "github.com/ipfs/kubo/plugin"
	kflatfs "github.com/ipfs/kubo/plugin/plugins/flatfs"
	"github.com/ipfs/kubo/repo/fsrepo"
	mh "github.com/multiformats/go-multihash"

	"github.com/kubo-highload/highload/datastore/tiered"
	"github.com/kubo-highload/highload/plugin/hlstate"
)

func init() {
	// Kubo's loader registers flatfs in a daemon; a unit test does it here.
	p := kflatfs.Plugins[0].(kplugin.PluginDatastore)
	_ = fsrepo.AddDatastoreConfigHandler(p.DatastoreTypeName(), p.DatastoreConfigParser())
}

func specMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const flatfsChild = `{"type":"flatfs","path":"blocks","sync":false,"shardFunc":"/repo/flatfs/shard/v1/next-to-last/2"}`

func TestTieredSpecDiskSpecIsChildIdentity(t *testing.T) {
	one, err := parseTieredConfig(specMap(t, `{"type":"tiered","tiers":[{"type":"memory","capacity":"64MiB"},{"child":`+flatfsChild+`,"capacity":"1GiB"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := fsrepo.AnyDatastoreConfig(specMap(t, flatfsChild))
	if err != nil {
		t.Fatal(err)
	}
	if one.DiskSpec().String() != plain.DiskSpec().String() {
		t.Fatalf("one-tier DiskSpec %s differs from its child's %s", one.DiskSpec(), plain.DiskSpec())
	}
	// Tunables and capacities do not change identity.
	tuned, err := parseTieredConfig(specMap(t, `{"type":"tiered","tiers":[{"child":`+flatfsChild+`,"capacity":"5GiB"}],"moverRate":"1MiB","compressThreshold":"1MiB"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tuned.DiskSpec().String() != one.DiskSpec().String() {
		t.Fatal("tunables changed the DiskSpec")
	}
	two, err := parseTieredConfig(specMap(t, `{"type":"tiered","tiers":[{"child":`+flatfsChild+`,"capacity":"1GiB"},
		{"child":{"type":"flatfs","path":"/mnt/slow","sync":false,"shardFunc":"/repo/flatfs/shard/v1/next-to-last/2"},"capacity":"1TiB"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"tiers":[{"path":"blocks","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2","type":"flatfs"},{"path":"/mnt/slow","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2","type":"flatfs"}],"type":"tiered"}`
	if got := two.DiskSpec().String(); got != want {
		t.Fatalf("two-tier DiskSpec\n got %s\nwant %s", got, want)
	}
}

func TestTieredSpecRefusedNamingTheField(t *testing.T) {
	for spec, field := range map[string]string{
		`{"type":"tiered","tiers":[{"child":{"type":"nosuch"},"capacity":"1GiB"}]}`:                                                   "nosuch",
		`{"type":"tiered","tiers":[{"capacity":"1GiB"}]}`:                                                                             "tiers[0].child",
		`{"type":"tiered","tiers":[{"child":` + flatfsChild + `,"capacity":"1KiB"}]}`:                                                 "tiers[0].capacity",
		`{"type":"tiered","tiers":[{"child":` + flatfsChild + `,"capacity":"1GiB"},{"child":` + flatfsChild + `,"capacity":"1GiB"}]}`: "tiers[1].child.path",
	} {
		_, err := parseTieredConfig(specMap(t, spec))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Fatalf("%s: err %v does not name %s", spec, err, field)
		}
	}
}

func TestTieredCreatePublishesLiveStats(t *testing.T) {
	dir := t.TempDir()
	c, err := parseTieredConfig(specMap(t, `{"type":"tiered","tiers":[{"type":"memory","capacity":"16MiB"},{"child":`+flatfsChild+`,"capacity":"1GiB"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h, _ := mh.Sum([]byte("block"), mh.SHA2_256, -1)
	k := dshelp.MultihashToDsKey(h)
	if err := d.Put(context.Background(), k, []byte("block")); err != nil {
		t.Fatal(err)
	}
	f, ok := hlstate.Live("tiered")
	if !ok {
		t.Fatal("no live stats published")
	}
	s := f().(tiered.Stats)
	if len(s.Tiers) != 2 || s.Tiers[1].Blocks != 1 {
		t.Fatalf("stats %+v", s)
	}
	if !verifyBlock(k, []byte("block")) || verifyBlock(k, []byte("blocc")) {
		t.Fatal("verifyBlock does not check the multihash")
	}
	if !verifyBlock(ds.NewKey("/not-a-block-key!"), []byte("x")) {
		t.Fatal("non-block keys must verify")
	}
}

func TestTieredProfileWrapsFlatfs(t *testing.T) {
	c := &kconfig.Config{Datastore: kconfig.DefaultDatastoreConfig()}
	if err := applyTieredProfile(c); err != nil {
		t.Fatal(err)
	}
	// Round-trip through JSON, as Kubo stores the config.
	b, _ := json.Marshal(c.Datastore.Spec)
	var spec map[string]any
	json.Unmarshal(b, &spec)
	blocks := spec["mounts"].([]any)[0].(map[string]any)
	if blocks["type"] != TieredTypeName {
		t.Fatalf("/blocks mount is %v", blocks["type"])
	}
	if _, err := tiered.ParseSpec(blocks); err != nil {
		t.Fatalf("profile wrote a bad spec: %v", err)
	}
	// The levelds mount is untouched, and so is the disk identity: an
	// existing repo keeps opening.
	levelds := spec["mounts"].([]any)[1].(map[string]any)
	if levelds["type"] != "levelds" {
		t.Fatalf("/ mount changed to %v", levelds["type"])
	}
	after, err := parseTieredConfig(blocks)
	if err != nil {
		t.Fatal(err)
	}
	flat, _ := fsrepo.AnyDatastoreConfig(specMap(t, flatfsChild))
	if after.DiskSpec().String() != flat.DiskSpec().String() {
		t.Fatalf("profile changed the /blocks identity: %s vs %s", after.DiskSpec(), flat.DiskSpec())
	}
	// Applying again keeps the layout.
	if err := applyTieredProfile(c); err != nil {
		t.Fatal(err)
	}
	if got := memoryTierSize(64 << 30); got != 2<<30 {
		t.Fatalf("64 GiB machine: memory tier %d", got)
	}
	if got := memoryTierSize(8 << 30); got != 512<<20 {
		t.Fatalf("8 GiB machine: memory tier %d", got)
	}
}
