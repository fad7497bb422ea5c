package node

import (
	"github.com/quorumkv/quorumkv/transport"
)

// legacyWarning is the /status warning of a node in the window of a
// rolling upgrade (transport.LegacyWarning).
func legacyWarning(tr transport.Transport) string { return transport.LegacyWarning(tr) }

// PeerTooOld reports whether err, from a call to a peer, says the peer
// runs an older release (transport.PeerTooOld).
func PeerTooOld(err error) bool { return transport.PeerTooOld(err) }
