// Package nodehook carries package node's test-only operations to
// node/nodetest, so that they are not on *node.Node's exported surface.
// Package node sets the hooks when it is initialised.
package nodehook

// Crash stops a *node.Node the way a crash would (no drain, no gossip
// leave, no clean-shutdown mark), as nodetest.Cluster.Crash needs.
var Crash func(n any) error
