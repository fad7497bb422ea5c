package node

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/buildinfo"
)

// StatusJSON is the body of /status (api.Status).
type StatusJSON = api.Status

var started = time.Now()

// BuildInfo describes this binary (package buildinfo).
func BuildInfo() api.Build { return buildinfo.Get() }

// Status summarises the node for /status and `quorumkv status`.
func (n *Node) Status() StatusJSON {
	r := n.Ring()
	st := n.st.Stats()
	d := n.cfg.Defaults
	return StatusJSON{
		Node: n.cfg.NodeID, Version: buildinfo.Version(), Build: BuildInfo(), DataDir: n.cfg.DataDir, Sync: n.cfg.Sync,
		Started: started, RingSize: r.Len(), Partitions: r.Partitions(), Alive: n.liveOthers() + 1,
		Defaults:    map[string]any{"n": d.N, "r": d.R, "w": d.W, "pr": d.PR, "pw": d.PW, "dw": d.DW, "timeout": d.Timeout.String()},
		Store:       n.storeStatus(st),
		Hints:       n.hints.Status(),
		AntiEntropy: n.ae.Status(),
		Transfers:   n.transfersStatus(),
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
	if s := n.st.State(); s.ReadOnly {
		out = append(out, "store read-only, writes refused: "+s.Reason)
	}
	return out
}
