package node

import (
	"context"
	"net/http"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// AEStatus is the anti-entropy part of /status.
type AEStatus struct{}

type antiEntropy struct{ n *Node }

func newAntiEntropy(n *Node) (*antiEntropy, error)     { return &antiEntropy{n: n}, nil }
func (a *antiEntropy) start()                          {}
func (a *antiEntropy) ringChanged(old, new *ring.Ring) {}
func (a *antiEntropy) status() AEStatus                { return AEStatus{} }

func (n *Node) serveAntiEntropy(ctx context.Context, m transport.Method, body []byte) ([]byte, error) {
	return nil, invalid("anti-entropy not enabled")
}

func (n *Node) handleRepair(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not_implemented", "repair not implemented")
}
