package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/ipfs/kubo/config"
	"github.com/ipfs/kubo/test/cli/harness"
)

// TestAutoTuneWriteCommandsNeedAuthorization: the tuner's write commands
// (freeze, resume, revert, set) are admin-only through Kubo's RPC
// authorisation, as docs/tuning.md says: with API.Authorizations set, a
// monitoring token limited to the read paths it lists can read the health
// and advise reports but is refused freeze (403) and the tuner stays
// running; a request without a token is refused; an admin token (all of
// /api/v0) can freeze and resume.
func TestAutoTuneWriteCommandsNeedAuthorization(t *testing.T) {
	t.Parallel()
	defer failOnPanic(t)
	h := newHarness(t, ourBin(t))
	n := newNode(t, h)
	setPlugin(n, config.Plugin{Config: map[string]any{
		"Health":   healthConfig(nil),
		"AutoTune": map[string]any{"Enabled": true, "Window": "1s"},
	}})
	n.UpdateConfig(func(cfg *config.Config) {
		cfg.API.Authorizations = map[string]*config.RPCAuthScope{
			"admin": {AuthSecret: "bearer:admin-secret", AllowedPaths: []string{"/api/v0"}},
			"monitor": {AuthSecret: "bearer:monitor-secret", AllowedPaths: []string{
				"/api/v0/stats/highload/health", "/api/v0/stats/highload/advise"}},
		}
	})
	const admin, monitor = "Bearer admin-secret", "Bearer monitor-secret"
	n.StartDaemonWithReq(harness.RunRequest{CmdOpts: daemonCmdOpts()}, admin)
	client := &http.Client{Timeout: cmdTimeout}
	call := func(auth, path string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, n.APIURL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	frozen := func() bool {
		t.Helper()
		code, body := call(admin, "/api/v0/stats/highload/autotune")
		var s struct{ Frozen bool }
		if code != http.StatusOK || json.Unmarshal(body, &s) != nil {
			t.Fatalf("autotune status with the admin token: %d %s", code, body)
		}
		return s.Frozen
	}

	for _, p := range []string{"/api/v0/stats/highload/health", "/api/v0/stats/highload/advise"} {
		if code, body := call(monitor, p); code != http.StatusOK {
			t.Fatalf("monitoring token reading %s: %d %s", p, code, body)
		}
	}
	for _, auth := range []string{monitor, ""} {
		for _, p := range []string{"/api/v0/stats/highload/autotune/freeze", "/api/v0/stats/highload/autotune/revert",
			"/api/v0/stats/highload/autotune/set?arg=go.GOGC&arg=200"} {
			if code, body := call(auth, p); code != http.StatusForbidden {
				t.Fatalf("%s with token %q: %d %s; want 403", p, auth, code, body)
			}
		}
	}
	if frozen() {
		t.Fatal("the tuner is frozen after refused freeze requests")
	}
	if code, body := call(admin, "/api/v0/stats/highload/autotune/freeze?reason=ops"); code != http.StatusOK {
		t.Fatalf("admin freeze: %d %s", code, body)
	}
	if !frozen() {
		t.Fatal("admin freeze did not freeze the tuner")
	}
	if code, body := call(admin, "/api/v0/stats/highload/autotune/resume"); code != http.StatusOK || frozen() {
		t.Fatalf("admin resume: %d %s", code, body)
	}
	stopDaemon(t, n)
}
