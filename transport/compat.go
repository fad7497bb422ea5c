package transport

import (
	"errors"

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
