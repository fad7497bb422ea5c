package node

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/quorumkv/quorumkv/vclock"
)

// Causal contexts handed to clients are signed: "<vclock token>.<mac>",
// the mac being the first 16 bytes of HMAC-SHA256 over the token under a
// key derived from the cluster secret. A client can only send back a context
// some node issued. A forged context could otherwise claim dots an actor has
// not minted yet, and that actor's next writes of the key would be taken for
// already seen and silently dropped.
//
// Without a cluster secret the key is a fixed constant: tokens keep their
// form but protect nothing (the node logs a warning at start).

const contextMACLen = 16

var errContextMAC = errors.New("context was not issued by this cluster (bad signature)")

func contextKey(secret string) []byte {
	k := sha256.Sum256([]byte("quorumkv context key\x00" + secret))
	return k[:]
}

func (n *Node) contextMAC(token string) string {
	m := hmac.New(sha256.New, n.ctxKey)
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:contextMACLen])
}

// EncodeContext returns the signed client token for v ("" for an empty
// vector).
func (n *Node) EncodeContext(v vclock.Vector) string {
	t := vclock.EncodeContext(v)
	if t == "" {
		return ""
	}
	return t + "." + n.contextMAC(t)
}

// DecodeContext verifies and decodes a client token. "" is the empty
// context.
func (n *Node) DecodeContext(s string) (vclock.Vector, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > vclock.MaxContextLen+1+32 {
		return nil, vclock.ErrTooLarge
	}
	t, mac, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errContextMAC
	}
	if !hmac.Equal([]byte(mac), []byte(n.contextMAC(t))) {
		return nil, errContextMAC
	}
	return vclock.DecodeContext(t)
}

// ParseContextToken decodes a client token's vector without checking its
// signature: for tools (the bench) that read contexts, never for writes.
func ParseContextToken(s string) (vclock.Vector, error) {
	t, _, _ := strings.Cut(s, ".")
	return vclock.DecodeContext(t)
}
