package node_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/transport"
)

// Issue 16: an overwrite is one round of checked merges
// (wire.MethodMergeCheck) when the replicas report that they held nothing
// the new set does not cover; otherwise, or when a peer of an older
// release answers the method as unknown (it then gets a plain merge), it
// reads the other replicas' contexts only (wire.MethodReadContext), and a
// peer of a release that predates that too is read whole instead, with no
// failure counted. Either way the overwrite supersedes both siblings that
// every replica acknowledged (no lost write, no sibling left), in a
// cluster of new nodes, of old ones, and of both.
func TestOverwriteContextReadCompat(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  map[int]bool // nodes that refuse MethodReadContext and MethodMergeCheck
		mid  map[int]bool // nodes that refuse MethodMergeCheck only
	}{
		{"all new", nil, nil},
		{"others old", map[int]bool{0: true, 1: true}, nil},
		{"one old", map[int]bool{0: true}, nil},
		{"others without checked merges", nil, map[int]bool{0: true, 1: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served, refused, checked, checkRefused atomic.Int64
			c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(i int, cfg *node.Config) {
				listen := cfg.NewTransport
				cfg.NewTransport = func(h transport.Handler) (transport.Transport, error) {
					return listen(transport.HandlerFunc(func(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
						if m == wire.MethodMergeCheck {
							if tc.old[i] || tc.mid[i] {
								checkRefused.Add(1)
								return nil, &transport.RemoteError{Code: wire.CodeInvalid, Msg: wire.UnknownMethodMsg(uint8(m))}
							}
							checked.Add(1)
						}
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
			// The overwrite answers at W acks and R clean answers, so the
			// third replica's call may still be on its way when the loop
			// ends: the counts are awaited, not read once.
			var bad string
			check := func() bool {
				bad = ""
				reads := fmt.Sprintf("context-only reads served %d, refused %d; checked merges served %d, refused %d", served.Load(), refused.Load(), checked.Load(), checkRefused.Load())
				switch {
				case len(tc.old)+len(tc.mid) == 0 && (served.Load() != 0 || refused.Load() != 0 || checked.Load() < 5 || checkRefused.Load() != 0):
					bad = reads + "; want no read (one round) and checked merges served"
				case len(tc.old) == 2 && (served.Load() != 0 || refused.Load() < 5 || checked.Load() != 0):
					bad = reads + "; want none served (every peer old), reads refused one per overwrite at least"
				case len(tc.old) == 1 && (checkRefused.Load() < 5 || checked.Load() < 5):
					bad = reads + "; want checked merges refused by the old peer and served by the new one"
				case len(tc.mid) == 2 && (served.Load() < 5 || checkRefused.Load() < 5):
					bad = reads + "; want checked merges refused, then a context-only read per overwrite at least"
				}
				return bad == ""
			}
			for deadline := time.Now().Add(10 * time.Second); !check() && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if bad != "" {
				t.Error(bad)
			}
		})
	}
}
