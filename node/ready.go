package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/probe"
	"github.com/quorumkv/quorumkv/ring"
)

// Readiness: /healthz says the process is alive (a liveness probe restarts
// it when not); /readyz says it should be sent traffic (a readiness probe
// or a load balancer takes it out of rotation when not, and a health check
// of a container reports it unhealthy).

// CodeNotReady is the error code of a /readyz answer of 503.
const CodeNotReady = api.CodeNotReady

const (
	// metaReadyProbe is the store meta key /readyz writes to check that
	// the store accepts writes.
	metaReadyProbe = "ready.probe"
	// readyProbeTimeout bounds how long /readyz waits for that write: a
	// disk that takes longer is reported as not writable.
	readyProbeTimeout = 2 * time.Second
	// readyProbeFresh is how long a probe write's result is reused, so a
	// burst of probes (several probers, a retrying load balancer) costs
	// one synced write.
	readyProbeFresh = time.Second
)

// ReadyJSON is the body of /readyz (api.Ready).
type ReadyJSON = api.Ready

// Ready reports why the node should not be sent traffic yet, or nil when
// it is ready: it is not shutting down, it has joined a cluster (see
// Joined), it is on the ring, its records are open (not quarantined after a
// long downtime) and its store completed a synced write within
// readyProbeTimeout. It may block that long. Safe for concurrent use.
func (n *Node) Ready(ctx context.Context) []string {
	if n.closing.Load() {
		return []string{"shutting down"}
	}
	var reasons []string
	if !n.Joined() {
		reason := fmt.Sprintf("not joined: no member other than this one answered the seeds %s yet", strings.Join(n.cfg.Join, ","))
		// firsthour (issue 19 item 6): say why, when the seeds refused our secret.
		if st, ok := n.secretStatus(); ok && st.JoinFailing {
			reason = fmt.Sprintf("not joined: cluster secret mismatch: the seeds %s use another secret (or none)", st.Peer)
		}
		reasons = append(reasons, reason)
	}
	if !n.Ring().Has(ring.NodeID(n.cfg.NodeID)) {
		n.mu.RLock()
		left := n.state.Members[n.cfg.NodeID].Left
		n.mu.RUnlock()
		if left {
			reasons = append(reasons, "not on the ring: this node left or was removed (start it on a new, empty data directory to rejoin)")
		} else {
			reasons = append(reasons, "not on the ring yet")
		}
	}
	if r := n.ringForming(); r != "" {
		reasons = append(reasons, r)
	}
	if n.ae != nil && n.ae.Quarantined() {
		reasons = append(reasons, "records closed: back from a long downtime, checking with its peers before serving its data")
	}
	if err := n.probe.Check(ctx, readyProbeFresh, errProbeSlow, n.writeProbe); err != nil {
		reasons = append(reasons, "store not writable: "+err.Error())
	}
	return reasons
}

// writeProbe makes one synced write to the store.
func (n *Node) writeProbe() error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n.now().UnixNano()))
	return n.st.PutMeta(metaReadyProbe, b[:])
}

func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyProbeTimeout)
	defer cancel()
	reasons := n.Ready(ctx)
	if len(reasons) == 0 {
		writeJSON(w, http.StatusOK, ReadyJSON{Status: "ready", Node: n.cfg.NodeID})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, ReadyJSON{Status: "not ready", Node: n.cfg.NodeID, Reasons: reasons,
		Error: "not ready: " + strings.Join(reasons, "; "), Code: CodeNotReady})
}

// storeProbe shares /readyz's store write between concurrent probes.
type storeProbe = probe.Shared

// errProbeSlow is the answer while a probe write takes longer than the
// caller waits.
var errProbeSlow = fmt.Errorf("a synced write did not finish within %s", readyProbeTimeout)
