package node

import (
	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/vclock"
)

// Causal contexts handed to clients are signed by a ctxauth.Signer:
// "<vclock token>.<mac>". A client can only send back a context some node of
// this cluster issued, with counters in range (ctxauth's package doc says
// what a forged one would do). The key is never a public constant: with a
// cluster secret it is derived from the secret (ctxauth.KeyFromSecret);
// without one it is the cluster's random key, carried in the ring state
// (ClusterState.ContextKey) and converging on one value by gossip.

// legacyContextKey is the previous release's key (ctxauth.LegacyKey).
func legacyContextKey(secret string) []byte { return ctxauth.LegacyKey(secret) }

// newContextSigner returns the signer of a node with cfg whose ring state
// holds clusterKey (ctxauth.NodeSigner).
func newContextSigner(cfg Config, clusterKey []byte) (*ctxauth.Signer, error) {
	return ctxauth.NodeSigner(cfg.Secret, clusterKey, cfg.AcceptV1Peers)
}

// ensureContextKeyLocked gives a ring state without a secret its random
// context key if it has none (a new state, or one persisted before keys).
// Caller holds mu or is New.
func (n *Node) ensureContextKeyLocked() error {
	if n.cfg.Secret != "" || ctxauth.ValidKey(n.state.ContextKey) == nil {
		return nil
	}
	k, err := ctxauth.NewClusterKey(nil)
	if err != nil {
		return err
	}
	n.state.ContextKey = k
	return nil
}

// contextKeyMergedLocked switches the signer to the ring state's key
// after a merge changed it (two members born apart agree on the smaller).
// Caller holds mu.
func (n *Node) contextKeyMergedLocked() {
	if n.cfg.Secret != "" || n.ctxSigner == nil || ctxauth.ValidKey(n.state.ContextKey) != nil {
		return
	}
	if err := n.ctxSigner.Rotate(n.state.ContextKey); err != nil {
		n.log.Error("context key from the ring state", "err", err)
	}
}

// EncodeContext returns the signed client token for v ("" for an empty
// vector).
func (n *Node) EncodeContext(v vclock.Vector) string { return n.ctxSigner.EncodeContext(v) }

// DecodeContext verifies and decodes a client token, and bounds its
// counters. "" is the empty context.
func (n *Node) DecodeContext(s string) (vclock.Vector, error) { return n.ctxSigner.DecodeContext(s) }
