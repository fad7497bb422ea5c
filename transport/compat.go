package transport

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// PeerTooOld reports whether err, from a call to a peer, says the peer
// does not know the method: it runs an older release (wire.IsUnknownMethod).
// A caller of a method newer than the last release treats it so: it falls
// back to what that release offers, or leaves the peer out, rather than
// counting a failure (docs/ARCHITECTURE.md, "Compatibility between
// releases").
func PeerTooOld(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && wire.IsUnknownMethod(re.Code, re.Msg)
}

// LegacyWarning is the /status warning of a node in the window of a
// rolling upgrade (Config.AcceptV1Peers): the setting is on and, when the
// transport can tell (the TCP transport), which peers of the release
// before encryption it exchanges unencrypted frames with right now.
func LegacyWarning(tr Transport) string {
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
