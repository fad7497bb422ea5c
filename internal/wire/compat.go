package wire

import (
	"strconv"
	"strings"
)

// Compatibility between releases (docs/ARCHITECTURE.md has the rules).
// A message's layout is fixed for its method: decoders of every release,
// the last one before this package included, refuse an array of another
// length, so a field is never appended to an existing message. A new
// field or message is a new method number; a node that does not know a
// number answers CodeInvalid with UnknownMethodMsg, and the caller, seeing
// IsUnknownMethod, knows the peer runs an older release: it falls back to
// what that release offers (or leaves the peer out) instead of counting a
// failure.

// unknownMethodPrefix starts the message of the refusal of an unknown
// method. Every release answers with it (the last release before this
// package wrote "unknown method %d" by hand): do not reword it.
const unknownMethodPrefix = "unknown method "

// UnknownMethodMsg is the message of the CodeInvalid refusal a node
// answers to method m when it does not know it.
func UnknownMethodMsg(m uint8) string { return unknownMethodPrefix + strconv.Itoa(int(m)) }

// IsUnknownMethod reports whether a refusal with code and msg says the
// serving node does not know the method called: it runs an older release
// than the caller ("peer too old").
func IsUnknownMethod(code uint16, msg string) bool {
	return code == CodeInvalid && strings.HasPrefix(msg, unknownMethodPrefix)
}
