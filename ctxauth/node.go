package ctxauth

import (
	"crypto/sha256"
	"fmt"
)

// LegacyKey is the key the release before ctxauth derived from the secret.
// With a secret it is as secret as the secret; it is kept for verification
// so contexts issued by that release stay valid, and signs during the
// rolling-upgrade window, so that release's nodes accept the contexts a
// node of this one hands out.
func LegacyKey(secret string) []byte {
	k := sha256.Sum256([]byte("quorumkv context key\x00" + secret))
	return k[:]
}

// NodeSigner returns the signer of a node: without a secret, over its ring
// state's clusterKey; with one, over the key derived from it
// (KeyFromSecret), LegacyKey kept for verification, or, with legacyFirst
// (the upgrade window), signing with LegacyKey and verifying the derived
// key too.
func NodeSigner(secret string, clusterKey []byte, legacyFirst bool) (*Signer, error) {
	if secret == "" {
		s, err := NewSigner(clusterKey)
		if err != nil {
			return nil, fmt.Errorf("ring state's context key: %w", err)
		}
		return s, nil
	}
	derived, err := KeyFromSecret(secret)
	if err != nil {
		return nil, err
	}
	first, then := LegacyKey(secret), derived
	if legacyFirst {
		first, then = then, first
	}
	s, err := NewSigner(first)
	if err != nil {
		return nil, err
	}
	return s, s.Rotate(then)
}
