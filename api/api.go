package api

import "time"

// Headers of /kv/{key} requests and answers.
const (
	// HeaderContext carries the opaque causal context: returned by reads and
	// writes, sent back with a write to supersede what the read saw.
	HeaderContext = "X-Quorumkv-Context"
	// HeaderDot is the dot of the write that stored the (single) value, or
	// of the write just made.
	HeaderDot = "X-Quorumkv-Dot"
	// HeaderSiblings is how many siblings (tombstones included) the key holds.
	HeaderSiblings = "X-Quorumkv-Siblings"
	// HeaderAcksPrimary, HeaderAcksFallback and HeaderAcksDurable count the
	// replicas that answered a request: primaries, fallbacks, and writes
	// that were fsynced.
	HeaderAcksPrimary  = "X-Quorumkv-Acks-Primary"
	HeaderAcksFallback = "X-Quorumkv-Acks-Fallback"
	HeaderAcksDurable  = "X-Quorumkv-Acks-Durable"
	// HeaderAcksZones counts the distinct zones (agents' --zone) a write's
	// acks came from: set when the ring has several zones or the write
	// asked for pz (the zones it had to reach).
	HeaderAcksZones = "X-Quorumkv-Acks-Zones"
	// HeaderCoordinator names the node that minted a write's dot.
	HeaderCoordinator = "X-Quorumkv-Coordinator"
	// HeaderLocal names the node whose own copy a local read returned.
	HeaderLocal = "X-Quorumkv-Local"
	// HeaderOverwrite: true on a PUT makes it supersede what a read at the
	// request's R sees (as ?overwrite=true does).
	HeaderOverwrite = "X-Quorumkv-Overwrite"
	// HeaderWarning is a sentence for a person about the answer, one
	// header per warning, starting with its kind: "siblings:" (the write
	// left the key with two siblings or more), "sibling threshold:" (at or
	// over the node's warning threshold), "durability reduced:" (the ring
	// is smaller than the default N, and the request ran with fewer
	// replicas).
	HeaderWarning = "X-Quorumkv-Warning"
	// HeaderExpires is the time a read's value has left to live, as a Go
	// duration in whole milliseconds ("29.997s", FormatRemaining): with
	// several live siblings, the time until the last of them expires.
	// Absent when a live value has no time to live.
	HeaderExpires = "X-Quorumkv-Expires"
)

// Error codes in Error.Code.
const (
	CodeNotFound = "not_found"
	// CodeExists (412): a create-only write (If-None-Match: *) found a
	// live value.
	CodeExists           = "exists"
	CodeBadParameter     = "bad_parameter"
	CodeQuorumNotMet     = "quorum_not_met"
	CodeValueTooLarge    = "value_too_large"
	CodeSiblingsTooLarge = "siblings_too_large"
	CodeTooManySiblings  = "too_many_siblings"
	CodeNoCoordinator    = "no_coordinator"
	CodeShuttingDown     = "shutting_down"
	CodeUnavailable      = "unavailable"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnknownPath      = "unknown_path"
	CodeBadBody          = "bad_body"
	CodeCanceled         = "canceled"
	CodeInternal         = "internal"
	// CodeTooSlow (408): the request body arrived below the minimum
	// rate; the connection is closed.
	CodeTooSlow = "too_slow"
	// CodeBusy (503, with Retry-After): the node's memory budget for
	// requests in flight is full; retry later.
	CodeBusy = "busy"
	// CodeDiskFull (507): the node is read-only because its disk is
	// (nearly) full; reads go on.
	CodeDiskFull = "disk_full"
	// CodeUnauthorized (401): no credentials, or credentials no principal
	// holds. The answer carries WWW-Authenticate: Bearer.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden (403): the principal's role may not make the call, or
	// a browser-attack defence refused the request (cross-origin, Host).
	CodeForbidden = "forbidden"
	// CodeSecretMismatch: /healthz of a node whose seeds refused its
	// cluster secret, so it joined no cluster.
	CodeSecretMismatch = "secret_mismatch"
)

// Sibling is one value in a 300 Multiple Choices answer.
type Sibling struct {
	Value       string    `json:"value"` // base64, standard encoding
	ContentType string    `json:"content_type"`
	Timestamp   time.Time `json:"timestamp"` // the coordinator's clock: display only
	Deleted     bool      `json:"deleted"`
	Dot         string    `json:"dot"`
	// Expires is the value's deadline (absent: none). A value past it
	// is answered as a tombstone.
	Expires *time.Time `json:"expires,omitempty"`
}

// Siblings is the body of a 300 answer.
type Siblings struct {
	Siblings []Sibling `json:"siblings"`
	Context  string    `json:"context"`
}

// Error is the body of every error answer. Quorum failures carry the counts.
type Error struct {
	Error           string `json:"error"`
	Code            string `json:"code"`
	Param           string `json:"param,omitempty"`
	Acks            *int   `json:"acks,omitempty"`
	Required        *int   `json:"required,omitempty"`
	PrimaryAcks     *int   `json:"primary_acks,omitempty"`
	RequiredPrimary *int   `json:"required_primary,omitempty"`
	FallbackAcks    *int   `json:"fallback_acks,omitempty"`
	DurableAcks     *int   `json:"durable_acks,omitempty"`
	RequiredDurable *int   `json:"required_durable,omitempty"`
	// ZoneAcks and RequiredZones: the distinct zones acked and pz, when
	// the write asked for zones.
	ZoneAcks      *int `json:"zone_acks,omitempty"`
	RequiredZones *int `json:"required_zones,omitempty"`
	Targets       *int `json:"targets,omitempty"`
}

// Build says which binary a node runs: in /status and `quorumkv version`.
type Build struct {
	// Version is the module version ("v1.2.3", or "(devel)" for a build
	// from a checkout).
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, "" when the
	// build recorded none (go run, a build outside a checkout).
	Commit string `json:"commit,omitempty"`
	// CommitTime is that revision's time (RFC 3339), "" when unknown.
	CommitTime string `json:"commit_time,omitempty"`
	// Modified reports uncommitted changes in the checkout at build time.
	Modified bool `json:"modified,omitempty"`
	// Go is the toolchain version and target, e.g. "go1.26.8 linux/amd64".
	Go string `json:"go"`
}

// Health is the body of /healthz. PID lets a process manager check that
// the node answering on an address is the process it started, not another
// one that held the port.
type Health struct {
	Status string `json:"status"` // "ok", or why the node is not healthy
	Node   string `json:"node"`
	PID    int    `json:"pid"`
	// Error says why the node is not healthy (with a 503); empty when ok.
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// Member is one cluster member as a node sees it (/cluster/members).
type Member struct {
	ID     string `json:"id"`
	HTTP   string `json:"http"`
	RPC    string `json:"rpc"`
	RESP   string `json:"resp,omitempty"`
	Gossip string `json:"gossip,omitempty"`
	// State is the failure detector's view: alive, suspect, dead, left or
	// unknown.
	State string `json:"state"`
	// OnRing reports ring membership, which is not liveness: a crashed node
	// stays on the ring (its writes go to fallbacks) until it leaves.
	OnRing bool `json:"on_ring"`
	// Self marks the node that answered.
	Self bool `json:"self,omitempty"`
	// Zone is the member's failure domain (--zone), "" when none.
	Zone string `json:"zone,omitempty"`
}

// Members is the body of /cluster/members.
type Members struct {
	Node    string   `json:"node"`
	Members []Member `json:"members"`
}

// Ring is the body of /cluster/ring: the partition ownership a node
// computes from its ring state.
type Ring struct {
	Node       string      `json:"node"`       // the node that answered
	Partitions int         `json:"partitions"` // Q, fixed at cluster birth
	Tokens     int         `json:"tokens"`     // tokens per member
	N          int         `json:"n"`          // primaries listed per partition
	Members    []string    `json:"members"`    // ring members (not liveness)
	Owners     []Partition `json:"owners"`     // one per partition, in order
	// Mode is the placement: "claim" (an agreed assignment) or "tokens".
	Mode string `json:"mode,omitempty"`
	// Zones maps members to their zones (members without one left out).
	Zones map[string]string `json:"zones,omitempty"`
	// ZoneGuarantee says whether every partition's first N primaries are
	// in N distinct zones; ZoneReason says why not.
	ZoneGuarantee bool   `json:"zone_guarantee"`
	ZoneReason    string `json:"zone_reason,omitempty"`
	// Change is the ring change in course on the answering node, nil when
	// none: reads use Owners until it is committed.
	Change *RingChange `json:"change,omitempty"`
}

// Transfers is the body of /cluster/transfers: the answering node's side
// of the ring change in course, as a pending owner.
type Transfers struct {
	Node string `json:"node"`
	// Committed is the assignment reads route with, Target the one the
	// cluster moves to ("" when none), as "v<version>/<checksum>".
	Committed string `json:"committed,omitempty"`
	Target    string `json:"target,omitempty"`
	// Gains is how many partitions the node gains in Target; Received how
	// many of them it holds whole; Ready that it holds them all.
	Gains    int  `json:"gains"`
	Received int  `json:"received"`
	Ready    bool `json:"ready"`
	// WaitingFor lists old owners its transfers wait for: down, but not
	// removed from the ring.
	WaitingFor []string `json:"waiting_for,omitempty"`
	// Unaware lists live members that do not route with Target yet.
	Unaware []string `json:"unaware,omitempty"`
	// BytesDone and KeysDone count what the transfers toward Target moved
	// (RPC bytes both ways), across restarts of this node; BytesLeft is an
	// estimate (the average size so far), 0 when nothing tells it yet.
	BytesDone uint64 `json:"bytes_done"`
	KeysDone  uint64 `json:"keys_done"`
	BytesLeft uint64 `json:"bytes_left"`
	// Rate is the recent transfer rate in bytes per second; ETASeconds the
	// estimate of the time left at that rate (absent when unknown).
	Rate       float64  `json:"rate"`
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
	// Throttle is the transfer throttle: the cap in force now (adaptive
	// between the floor and the configured cap; 0: none), and the
	// partitions pulled at once.
	Throttle TransferThrottle `json:"throttle"`
	// Moving lists the partitions being pulled now.
	Moving []TransferPartition `json:"moving,omitempty"`
	// Resumed says the transfers resumed from a persisted cursor (this
	// node restarted during the change) with that many partitions done.
	Resumed int `json:"resumed,omitempty"`
}

// TransferThrottle is a node's transfer throttle, in /cluster/transfers.
type TransferThrottle struct {
	BytesPerSecond    float64 `json:"bytes_per_second"` // in force now; 0: no cap
	MaxBytesPerSecond int     `json:"max_bytes_per_second"`
	MinBytesPerSecond int     `json:"min_bytes_per_second"`
	Partitions        int     `json:"partitions"`
}

// TransferPartition is one partition being pulled from one old owner.
type TransferPartition struct {
	Partition uint32 `json:"partition"`
	From      string `json:"from"`
	To        string `json:"to"`
	// KeysLeft are the keys that differed, less those done; BytesLeft an
	// estimate from the average size so far.
	BytesDone  uint64   `json:"bytes_done"`
	BytesLeft  uint64   `json:"bytes_left"`
	KeysDone   uint64   `json:"keys_done"`
	KeysLeft   int      `json:"keys_left"`
	Rate       float64  `json:"rate"`
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
}

// RingChange is a ring change in course as one node sees it.
type RingChange struct {
	Committed string `json:"committed"` // the assignment reads use
	Target    string `json:"target"`    // the one the cluster moves to
	// Pending lists, per member, the partitions it gains (it gets their
	// writes now, their reads once the change is committed).
	Pending map[string]int `json:"pending"`
	// Ready lists the pending members that received all they gain.
	Ready []string `json:"ready,omitempty"`
	// Switching: the last commit is not yet reported by every live
	// member, so writes still reach the previous commit's owners too.
	// With no Target, it is the only thing in course.
	Switching bool `json:"switching,omitempty"`
}

// Partition is one partition's primaries, in preference order.
type Partition struct {
	Partition uint32   `json:"partition"`
	Primaries []string `json:"primaries"`
}

// KeyList is the body of GET /kv?prefix=P&after=CURSOR&limit=N: a page of
// keys, partition by partition in ring order and in byte order within each
// partition (so not one alphabetical list), and the
// cursor of the next page, empty on the last. A page may hold fewer keys
// than the limit; before the last it is empty only if it ran out of time
// (half its timeout) or a read failed after it had read on past empty
// partitions: Next is then where it stopped.
type KeyList struct {
	Keys []string `json:"keys"`
	Next string   `json:"next"`
}
