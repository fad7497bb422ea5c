package node_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/transport"
)

// Issue 16: an overwrite reads the other replicas' contexts only
// (wire.MethodReadContext), and a peer of a release that predates it
// (it answers the method as unknown) is read whole instead, with no
// failure counted. Either way the overwrite supersedes both siblings that
// every replica acknowledged (no lost write, no sibling left), in a
// cluster of new nodes, of old ones, and of both.
func TestOverwriteContextReadCompat(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  map[int]bool // nodes that refuse MethodReadContext
	}{
		{"all new", nil},
		{"others old", map[int]bool{0: true, 1: true}},
		{"one old", map[int]bool{0: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served, refused atomic.Int64
			c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(i int, cfg *node.Config) {
				listen := cfg.NewTransport
				cfg.NewTransport = func(h transport.Handler) (transport.Transport, error) {
					return listen(transport.HandlerFunc(func(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
						if m == wire.MethodReadContext {
							if tc.old[i] {
								refused.Add(1)
								return nil, &transport.RemoteError{Code: wire.CodeInvalid, Msg: wire.UnknownMethodMsg(uint8(m))}
							}
							served.Add(1)
						}
						return h.ServeRPC(ctx, from, m, body)
					}))
				}
			}})
			for k := range 5 {
				key := fmt.Sprintf("/kv/o%d", k)
				httpDo(t, "PUT", c.URL(0)+key+"?w=3", "a", nil)
				httpDo(t, "PUT", c.URL(1)+key+"?w=3", "b", nil)
				if a := httpDo(t, "GET", c.URL(2)+key+"?r=3", "", nil); a.status != 300 {
					t.Fatalf("%s before the overwrite: %d, want two siblings (300)", key, a.status)
				}
				if a := httpDo(t, "PUT", c.URL(2)+key+"?overwrite=true", "set", nil); a.status != 204 {
					t.Fatalf("overwrite of %s: %d %s", key, a.status, a.body)
				}
				if a := httpDo(t, "GET", c.URL(0)+key+"?r=3", "", nil); a.status != 200 || a.body != "set" {
					t.Fatalf("%s after the overwrite: %d %q, want set alone", key, a.status, a.body)
				}
			}
			switch {
			case len(tc.old) == 0 && (served.Load() == 0 || refused.Load() != 0):
				t.Errorf("context-only reads served %d, refused %d; want some served, none refused", served.Load(), refused.Load())
			case len(tc.old) == 2 && (served.Load() != 0 || refused.Load() == 0):
				t.Errorf("context-only reads served %d, refused %d; want none served (every peer old), some refused", served.Load(), refused.Load())
			case served.Load()+refused.Load() < 5:
				t.Errorf("context-only reads served %d, refused %d; want one per overwrite at least", served.Load(), refused.Load())
			}
		})
	}
}
