package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/quorumkv/quorumkv/api"
)

// Issue 19, item 8: the version names the module version, the commit from
// the build's vcs settings, and the Go version.
func TestFrom(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	want := api.Build{Version: "v1.2.3", Commit: "0123456789abcdef0123", CommitTime: "2026-01-02T03:04:05Z", Modified: true, Go: "go1.x linux/amd64"}
	if got := From(bi, "go1.x linux/amd64"); got != want {
		t.Fatalf("From = %+v, want %+v", got, want)
	}
	if got := From(nil, "go1.x"); got != (api.Build{Version: "(devel)", Go: "go1.x"}) {
		t.Fatalf("no build info: %+v", got)
	}
}
