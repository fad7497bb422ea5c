package memberauth

import "crypto/ed25519"

// signRaw signs msg with i's private key, for tests that forge records.
func signRaw(i Identity, msg []byte) []byte { return ed25519.Sign(i.priv, msg) }
