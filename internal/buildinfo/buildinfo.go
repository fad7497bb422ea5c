// Package buildinfo describes the running binary from what the Go
// toolchain recorded in it: module version, VCS commit and Go version.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/quorumkv/quorumkv/api"
)

// Get describes this binary: module version, VCS commit (from the build's
// vcs settings) and Go version.
func Get() api.Build {
	bi, _ := debug.ReadBuildInfo()
	return From(bi, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
}

// From reads bi (nil: none recorded).
func From(bi *debug.BuildInfo, goVersion string) api.Build {
	b := api.Build{Version: "(devel)", Go: goVersion}
	if bi == nil {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Version is the one-word version: the module version, with the short
// commit when the build recorded one.
func Version() string {
	b := Get()
	v := b.Version
	if b.Commit != "" {
		v += "+" + b.Commit[:min(12, len(b.Commit))]
		if b.Modified {
			v += "-dirty"
		}
	}
	return v
}
