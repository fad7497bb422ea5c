// Package node assembles one quorumkv peer: it owns the sockets, the
// goroutines and the store, and wires the capabilities that live in their
// own packages.
//
//   - package replica: the local copy (records and hints in the store,
//     minting, merging, the quarantine gate);
//   - package quorum: the coordinator of every read and write, over
//     replicas (rpc.go: this node's replica directly, others through
//     package transport with the messages of internal/wire);
//   - package hintedhandoff: hint caps and delivery;
//   - package antientropy: Merkle trees, exchanges, tombstone reaping,
//     quarantine, partition handoff;
//   - gossip (membership.go, memberlist) and the ring state CRDT
//     (clusterstate.go, state.go, ringops.go);
//   - the client fronts: packages httpapi (HTTP, the contract of package
//     api) and resp (Redis protocol), both over the frontBackend adapter
//     (fronts.go); the node keeps their listeners and its own routes
//     (health, readiness, metrics, admin).
//
// The capabilities reach the node through small host interfaces it
// implements with unexported adapters (hintHost, aeHost, replicas,
// frontBackend), and so do the layers that call back into it: gossip
// (gossipDelegate, a MembershipDelegate) and the transport (serveRPC, a
// transport.HandlerFunc). *Node's exported methods are what an embedder
// uses: start and stop, addresses, the HTTP handler, local reads, ring
// operations, status and repair. Test back doors (the coordinator among
// them) live in export_test.go, and the one nodetest needs (Crash) in
// internal/nodehook.
//
// Order of duties of a write: the coordinator (a replica of the key) mints
// the new dot from its local copy and persists it, locally or as a hint,
// before anything is acknowledged; it then sends the encoded set to the
// other targets and answers after W acknowledgements. Nothing is rolled
// back when W is not met.
//
// New starts a peer (store, replica, hinted handoff, anti-entropy, then
// the transport, the fronts and gossip) and Close stops it in the reverse
// order, waiting for every goroutine it started. A Node is safe for
// concurrent use.
package node
