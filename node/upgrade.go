package node

import (
	"fmt"
	"strings"

	"github.com/quorumkv/quorumkv/transport"
)

// legacyWarning is the /status warning of a node in the window of a
// rolling upgrade (Config.AcceptV1Peers): the setting is on and, when the
// transport can tell (the TCP transport), which peers of the release
// before encryption it exchanges unencrypted frames with right now.
func legacyWarning(tr transport.Transport) string {
	msg := "accept-v1-peers is on (rolling upgrade window): node-to-node RPC with peers of the release before encryption is UNENCRYPTED (protocol version 1); turn it off with a rolling restart once every node runs this release"
	lp, ok := tr.(interface{ LegacyPeers() []string })
	if !ok {
		return msg
	}
	if peers := lp.LegacyPeers(); len(peers) > 0 {
		return msg + fmt.Sprintf("; version 1 connections open now: %s", strings.Join(peers, ", "))
	}
	return msg + "; no version 1 connection is open now"
}

// PeerTooOld reports whether err, from a call to a peer, says the peer
// runs an older release (transport.PeerTooOld).
func PeerTooOld(err error) bool { return transport.PeerTooOld(err) }
