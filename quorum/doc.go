// Package quorum coordinates one read or write across the N replicas of a key:
// it validates the per-request N/R/W/PR/PW/DW parameters, fans the request out
// through the Replicas interface, counts replies against the quorum with pure
// trackers, replaces failed primaries with fallbacks (sloppy quorum), and
// decides which replicas a read must repair.
//
// The package has two layers. The trackers (WriteTracker, ReadTracker) and
// RepairTargets are pure: no I/O, no clock, no goroutines; their tests are
// tables. Coordinator is the small driver around them: it starts one goroutine
// per replica call and keeps late replies landing after it has answered (Dynamo
// semantics: a write that failed its quorum is not rolled back and may still
// become visible). It knows nothing of sockets, disks or memberlist: package
// node implements Replicas (local store or RPC) and Membership (ring plus
// liveness).
//
// Order of duties on a write: the coordinator first makes the write durable in
// its own replica (Replicas.Mint: the new dot is minted from local state and
// stored before anything is sent), then sends the resulting sibling set, encoded
// once, to the other targets, and answers after W acknowledgements counting
// itself.
//
// A Coordinator is safe for concurrent use. Wait blocks until background
// replica calls (late acks, read repair) have finished.
package quorum
