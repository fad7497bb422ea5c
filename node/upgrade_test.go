package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/transport"
)

type legacyTransport struct {
	transport.Transport
	peers []string
}

func (l legacyTransport) LegacyPeers() []string { return l.peers }

// Issue 17: in the upgrade window /status says the setting is on and
// which peers get unencrypted frames.
func TestLegacyWarning(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   transport.Transport
		want string
	}{
		{"transport that cannot tell", nil, "turn it off with a rolling restart once every node runs this release"},
		{"no version 1 peer", legacyTransport{}, "no version 1 connection is open now"},
		{"two", legacyTransport{peers: []string{"n2 at 10.0.0.2:7946", "n3 at 10.0.0.3:7946"}}, "version 1 connections open now: n2 at 10.0.0.2:7946, n3 at 10.0.0.3:7946"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := legacyWarning(tc.tr)
			if !strings.HasPrefix(got, "accept-v1-peers is on") || !strings.Contains(got, "UNENCRYPTED") || !strings.Contains(got, tc.want) {
				t.Fatalf("warning %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// A node answers a method it does not know as every release does, and the
// caller reads that as "peer too old"; a malformed request to a known
// method is not. With AcceptV1Peers its /status says so.
func TestPeerTooOldAndStatus(t *testing.T) {
	cfg := DefaultLocalConfig()
	cfg.NodeID, cfg.DataDir, cfg.Secret, cfg.AcceptV1Peers = "n1", t.TempDir(), "s3cret", true
	cfg.HTTPAddr, cfg.RPCAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	nd, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	_, err = nd.ServeRPC(t.Context(), "n2", 200, nil)
	if !transport.PeerTooOld(err) {
		t.Fatalf("unknown method: %v, want a peer-too-old refusal", err)
	}
	_, err = nd.ServeRPC(t.Context(), "n2", wire.MethodMerge, []byte{0xc1})
	if err == nil || transport.PeerTooOld(err) {
		t.Fatalf("malformed merge: %v, want an error that is not peer-too-old", err)
	}
	if transport.PeerTooOld(errors.New("unknown method 200")) {
		t.Fatal("a local error taken for a peer's refusal")
	}
	found := false
	for _, w := range nd.Status().Warnings {
		found = found || strings.Contains(w, "accept-v1-peers is on") && strings.Contains(w, "no version 1 connection is open now")
	}
	if !found {
		t.Fatalf("status warnings %q lack the upgrade window", nd.Status().Warnings)
	}
}
