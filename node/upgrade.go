package node

import (
	"github.com/quorumkv/quorumkv/transport"
)

// legacyWarning is the /status warning of a node in the window of a
// rolling upgrade (transport.LegacyWarning).
func legacyWarning(tr transport.Transport) string { return transport.LegacyWarning(tr) }
