package node

import (
	"strings"
	"testing"

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
