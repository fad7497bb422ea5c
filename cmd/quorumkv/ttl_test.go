package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// put --ttl gives the value a deadline; get -v and get --json say the time
// left.
func TestPutTTL(t *testing.T) {
	_, addrs := aliveCluster(t)
	environ := map[string]string{"QUORUMKV_ADDR": strings.Join(addrs, ",")}
	if code, out, errOut := runCmd(t, environ, "", "put", "session", "s", "--ttl", "1d", "--w", "3", "-q"); code != exitOK {
		t.Fatalf("put --ttl 1d: %d %q %q", code, out, errOut)
	}
	code, out, errOut := runCmd(t, environ, "", "get", "session", "-v")
	_, left, _ := strings.Cut(errOut, "expires in: ")
	d, err := time.ParseDuration(strings.TrimSpace(left))
	if code != exitOK || out != "s" || err != nil || d <= 23*time.Hour || d > 24*time.Hour {
		t.Fatalf("get -v: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCmd(t, environ, "", "get", "session", "--json")
	var js struct {
		Found     bool   `json:"found"`
		ExpiresIn string `json:"expires_in"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &js) != nil || !js.Found {
		t.Fatalf("get --json: %d %q", code, out)
	}
	if d, err := time.ParseDuration(js.ExpiresIn); err != nil || d <= 23*time.Hour || d > 24*time.Hour {
		t.Fatalf("get --json expires_in %q", js.ExpiresIn)
	}
	if code, _, _ := runCmd(t, environ, "", "get", "plain-missing", "--json"); code != exitNotFound {
		t.Fatalf("get of a missing key: %d", code)
	}
}
