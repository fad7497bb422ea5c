package node

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/quorumkv/quorumkv/api"
)

// StatusJSON is the body of /status (api.Status).
type StatusJSON = api.Status

var started = time.Now()

// BuildInfo describes this binary: module version, VCS commit (from the
// build's vcs settings) and Go version.
func BuildInfo() api.Build {
	bi, _ := debug.ReadBuildInfo()
	return buildFrom(bi, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
}

// buildFrom reads bi (nil: none recorded).
func buildFrom(bi *debug.BuildInfo, goVersion string) api.Build {
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

// buildVersion is the one-word version: the module version, with the
// short commit when the build recorded one.
func buildVersion() string {
	b := BuildInfo()
	v := b.Version
	if b.Commit != "" {
		v += "+" + b.Commit[:min(12, len(b.Commit))]
		if b.Modified {
			v += "-dirty"
		}
	}
	return v
}

// Status summarises the node for /status and `quorumkv status`.
func (n *Node) Status() StatusJSON {
	r := n.Ring()
	st := n.st.Stats()
	d := n.cfg.Defaults
	return StatusJSON{
		Node: n.cfg.NodeID, Version: buildVersion(), Build: BuildInfo(), DataDir: n.cfg.DataDir, Sync: n.cfg.Sync,
		Started: started, RingSize: r.Len(), Partitions: r.Partitions(), Alive: n.liveOthers() + 1,
		Defaults:    map[string]any{"n": d.N, "r": d.R, "w": d.W, "pr": d.PR, "pw": d.PW, "dw": d.DW, "timeout": d.Timeout.String()},
		Store:       map[string]any{"batches": st.Batches, "writes": st.Writes, "syncs": st.Syncs, "corrupt": st.Corrupt},
		Hints:       n.hints.Status(),
		AntiEntropy: n.ae.Status(),
		Members:     n.Members(),
		Warnings:    n.warnings(),
	}
}

// warnings lists what Status.Warnings says.
func (n *Node) warnings() []string {
	var out []string
	if nv := n.defaultN(); nv < n.cfg.Defaults.N {
		out = append(out, n.reducedWarning(nv))
	}
	if st, ok := n.secretStatus(); ok && st.Count > 0 && n.now().Sub(st.Last) < secretRecent {
		out = append(out, fmt.Sprintf("cluster secret mismatch: %d gossip message(s) with %s could not be decrypted or were not encrypted, the last %s ago; every node needs the same --secret or QUORUMKV_SECRET",
			st.Count, st.Peer, n.now().Sub(st.Last).Round(time.Second)))
	}
	if n.cfg.AcceptV1Peers {
		out = append(out, legacyWarning(n.tr))
	}
	return out
}
