// Package nodetest runs whole quorumkv clusters inside one test process:
// real nodes (real stores, coordinators and HTTP APIs on 127.0.0.1) joined by
// a transport.MemNetwork, which drops, delays, duplicates and partitions
// messages on command, and by Gossip, a scripted membership in which the test
// decides who is alive. Nothing here sends traffic off the loopback
// interface, and every node a Cluster starts is stopped by t.Cleanup.
//
// With Options.Bubble a cluster runs inside a testing/synctest bubble: no
// socket at all (no HTTP API; node's own tests call each node's coordinator
// through export_test.go), fake time,
// and, for one seed, the same history on every run (see Options.Bubble and
// docs/ARCHITECTURE.md).
//
// Cluster methods are safe for concurrent use with the nodes' own traffic,
// but a test should not kill and restart the same node from two goroutines.
package nodetest
