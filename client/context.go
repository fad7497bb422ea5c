package client

import (
	"strings"

	"github.com/quorumkv/quorumkv/vclock"
)

// ParseContext decodes the version vector inside a causal context token
// ("<vclock token>.<mac>", as Object.Context and WriteResult.Context carry
// it) without checking its signature, which only the cluster can. It is
// for tools that inspect what a read saw (the bench's consistency checker);
// a write must send the token back unchanged. "" is the empty vector. The
// token is untrusted input: errors wrap vclock's ErrTooLarge, ErrVersion or
// ErrMalformed, and it never panics.
func ParseContext(token string) (vclock.Vector, error) {
	t, _, _ := strings.Cut(token, ".")
	return vclock.DecodeContext(t)
}
