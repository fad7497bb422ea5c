// Package quorumhook carries package quorum's test-only operations to
// node's tests, so that they are not on *quorum.Coordinator's exported
// surface, as internal/aehook does for package antientropy. Package
// quorum sets the hooks when it is initialised; c is always a
// *quorum.Coordinator.
package quorumhook

// Wait blocks until the background replica calls that c started so far
// (late acks, read repair, local hint writes) have finished: node's tests
// observe them deterministically.
var Wait func(c any)
