// Package quorum coordinates one read or write across the N replicas of a key:
// it validates the per-request N/R/W/PR/PW/DW parameters, fans the request out
// through the Replicas interface, counts replies against the quorum with pure
// trackers, replaces failed primaries with fallbacks (sloppy quorum), and
// decides which replicas a read must repair.
//
// The package has two layers. The pure layer does no I/O, reads no clock and
// starts no goroutines; its tests are tables: the trackers (WriteTracker,
// ReadTracker) turn replies into a Decision, RepairTargets picks the replicas
// a read repairs, and the write plan (plan.go) decides from the ring, who is
// alive, the params and this node's id everything a write does before it
// sends anything: its targets, which primary each stands for, whether this
// node forwards (it is not a replica) and to whom, which primaries get a
// local hint of last resort, and whether the quorum is impossible up front;
// when a target fails, the plan says what stands in for it (the next spare
// as a fallback, else a hint of last resort). A read plan does the same for
// reads. Coordinator is the driver: Put and Get execute a plan in a short
// loop that feeds replies to a tracker, and keep late replies landing after
// they have answered (Dynamo semantics: a write that failed its quorum is not
// rolled back and may still become visible). It knows nothing of sockets,
// disks or memberlist: package node implements Replicas (local store or RPC)
// and Membership (ring plus liveness).
//
// Order of duties on a write: the coordinator first makes the write durable in
// its own replica (Replicas.Mint: the new dot is minted from local state and
// stored before anything is sent), then sends the resulting sibling set, encoded
// once, to the other targets, and answers after W acknowledgements counting
// itself.
//
// Each replica call the loops wait for is started in one place (goMerge,
// goRead) and sends its reply on a channel with room for every call of the
// request, so the send never blocks. With an AsyncReplicas (node's over
// TCP) the call takes a completion callback that makes that send, and no
// goroutine waits for it; otherwise a goroutine per call does. The loops
// only read the channel, so they do not know which. Replies that arrive
// after the answer are handled by the callback itself (write.deliver, a
// read's read.deliver, which also decides the read repair), so no
// goroutine waits for those either: a read starts one only to send a
// repair, when its replicas disagreed. A Get over a RawReader (node's)
// gets each answer as the set's encoding and decodes only the first and
// those whose bytes differ from it (readSet.decode): replicas that agree
// cost one decode.
//
// Deadlines: Put turns PutRequest.TTL into the value's absolute deadline
// with its clock before anything else (a forward carries the deadline),
// and Get answers values past their deadline as their tombstones
// (vclock.Expire), so every front reads them as deleted.
//
// A Coordinator is safe for concurrent use. Wait blocks until background
// replica calls (late acks, read repair) have finished; Close refuses new
// requests and waits for them.
package quorum
