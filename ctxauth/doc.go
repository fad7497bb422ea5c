// Package ctxauth signs the causal contexts quorumkv hands to clients and
// checks the ones they send back.
//
// A context is the one input from a client that the causality core
// trusts: a forged one can claim dots an actor has not minted yet (that
// actor's next writes of the key are then taken for already seen and
// silently dropped on merge), delete siblings its writer never read, or
// carry a counter so close to the limit that the next write of the key
// through that actor cannot be encoded (the key becomes unwritable through
// that node). So contexts go out signed and come back verified (Signer),
// and a verified context's counters are still bounded (CheckCounters).
//
// The signing key is never a public constant:
//
//   - with a cluster secret it is derived from the secret with HKDF-SHA256
//     under a label of its own (KeyFromSecret), so it is independent of the
//     gossip and transport keys derived from the same secret;
//   - without one, each cluster has a random key (NewClusterKey) carried in
//     the gossiped ring state; when two members hold different keys (they
//     were born apart, or started at the same moment), both keep the smaller
//     (MergeClusterKey), so every member converges on one key after one
//     gossip exchange, and the Signer still verifies contexts signed with
//     the key it held before (Rotate).
//
// See docs/SECURITY.md for what each mode protects against. The package is
// pure apart from reading randomness from the io.Reader it is given; a
// Signer is safe for concurrent use.
package ctxauth
