package api

import "time"

// Status is the body of /status and `quorumkv status`.
type Status struct {
	Node        string         `json:"node"`
	Version     string         `json:"version"`
	Build       Build          `json:"build"`
	DataDir     string         `json:"data_dir"`
	Sync        bool           `json:"sync"`
	Started     time.Time      `json:"started"`
	RingSize    int            `json:"ring_size"`
	Partitions  int            `json:"partitions"`
	Alive       int            `json:"alive"`
	Defaults    map[string]any `json:"defaults"`
	Store       map[string]any `json:"store"`
	Hints       HintsStatus    `json:"hints"`
	AntiEntropy AEStatus       `json:"anti_entropy"`
	// Transfers is this node's side of a ring change in course, absent
	// when none (the body of /cluster/transfers).
	Transfers *Transfers `json:"transfers,omitempty"`
	Members   []Member   `json:"members"`
	// Warnings are conditions an operator should act on, in words: a
	// cluster secret mismatch seen recently, a ring smaller than the
	// default N. Absent when there are none.
	Warnings []string `json:"warnings,omitempty"`
}

// AEStatus is the anti-entropy part of /status.
type AEStatus struct {
	// Enabled is false when the schedule is off (Interval 0): exchanges
	// then run only on demand or for marked partitions.
	Enabled         bool    `json:"enabled"`
	IntervalSeconds float64 `json:"interval_seconds"`
	LeafBits        int     `json:"leaf_bits"`
	// TreeBytes is the memory of all the partition trees.
	TreeBytes int `json:"tree_bytes"`
	// KeysAtStart and BuildMS describe the trees' start-up build from the
	// store.
	KeysAtStart           int     `json:"keys_at_start"`
	BuildMS               float64 `json:"build_ms"`
	TombstoneGraceSeconds float64 `json:"tombstone_grace_seconds"`
	MaxDowntimeSeconds    float64 `json:"max_downtime_seconds"`
	// Quarantined: this node's records are closed while it checks with its
	// peers (or drops its data); QuarantineReason says why.
	Quarantined      bool   `json:"quarantined"`
	QuarantineReason string `json:"quarantine_reason,omitempty"`
	// Excluded is the exclusion ledger: peers this node reaped tombstones
	// without; their RPCs are refused until they dropped their data.
	Excluded []ExcludedPeer `json:"excluded,omitempty"`
	// PendingClear lists peers not yet told that this node dropped its data.
	PendingClear []string `json:"pending_clear,omitempty"`
	// Wipes counts the times this node dropped its data since it started.
	Wipes int `json:"wipes"`
	// Running is the exchange in progress, if any.
	Running *RunningExchange `json:"running,omitempty"`
	// Marked counts the partitions marked for an exchange ahead of the
	// schedule (start-up, ring changes, dropped hints, on demand) that
	// has not yet succeeded: 0 once such repairs have all run.
	Marked int `json:"marked"`
	// Totals since the node started, over the exchanges it started.
	Exchanges           uint64 `json:"exchanges"`
	ExchangesFailed     uint64 `json:"exchanges_failed"`
	KeysCompared        uint64 `json:"keys_compared"`
	KeysDiffering       uint64 `json:"keys_differing"`
	RepairedLocal       uint64 `json:"repaired_local"`
	RepairedRemote      uint64 `json:"repaired_remote"`
	BytesSent           uint64 `json:"bytes_sent"`
	BytesReceived       uint64 `json:"bytes_received"`
	TombstonesConfirmed uint64 `json:"tombstones_confirmed"`
	TombstonesReaped    uint64 `json:"tombstones_reaped"`
	// LastReap is the last reap pass.
	LastReap *ReapStatus `json:"last_reap,omitempty"`
	// Partitions has the last exchange of each partition this node started
	// one for, by partition.
	Partitions []ExchangeStatus `json:"partitions"`
}

// ExcludedPeer is one entry of the exclusion ledger.
type ExcludedPeer struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// RunningExchange is a running exchange.
type RunningExchange struct {
	Partition uint32    `json:"partition"`
	Peer      string    `json:"peer"`
	Started   time.Time `json:"started"`
}

// ExchangeStatus is one exchange: partition, peer, what it compared and
// repaired, its bytes on the wire (RPC bodies both ways) and its error.
type ExchangeStatus struct {
	Partition  uint32    `json:"partition"`
	Peer       string    `json:"peer"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	// Rounds counts the tree round trips (1 when the roots agreed);
	// LevelsWalked the deepest tree level reached.
	Rounds       int `json:"rounds"`
	LevelsWalked int `json:"levels_walked"`
	// KeysCompared counts the keys listed, both sides, in the leaves that
	// differed; KeysDiffering those whose digests differed.
	KeysCompared  int `json:"keys_compared"`
	KeysDiffering int `json:"keys_differing"`
	// RepairedLocal and RepairedRemote count keys written here and at the
	// peer.
	RepairedLocal  int `json:"repaired_local"`
	RepairedRemote int `json:"repaired_remote"`
	// LeftToReaper counts confirmed tombstones absent on the other side,
	// not copied (the reaper of package antientropy); KeyErrors keys that could not be
	// repaired (undecodable sets, keys filed under a wrong hash).
	LeftToReaper  int    `json:"left_to_reaper,omitempty"`
	Errors        int    `json:"key_errors,omitempty"`
	BytesSent     int    `json:"bytes_sent"`
	BytesReceived int    `json:"bytes_received"`
	Error         string `json:"error,omitempty"`
}

// ReapStatus is one pass of the tombstone reaper.
type ReapStatus struct {
	At time.Time `json:"at"`
	// Candidates counts the all-tombstone records looked at; Confirmed those
	// every primary was found to hold (the grace starts); Reaped those
	// deleted; Blocked those a primary did not hold or could not confirm.
	Candidates int `json:"candidates"`
	Confirmed  int `json:"confirmed"`
	Reaped     int `json:"reaped"`
	Blocked    int `json:"blocked"`
	// Expired counts the records whose values had all passed their
	// deadline and that this pass turned into tombstones (they are
	// confirmed and reaped like deleted ones from then on).
	Expired int `json:"expired"`
}

// RepairReport is what an on-demand repair did, the body of POST
// /admin/repair: exchanges of each partition the node replicates (or the
// one asked) with each other primary.
type RepairReport struct {
	Node string `json:"node"`
	// Partitions is how many partitions were repaired, each with every
	// other primary in turn (Exchanges in all, Failed of which failed).
	Partitions     int     `json:"partitions"`
	Exchanges      int     `json:"exchanges"`
	Failed         int     `json:"failed"`
	KeysCompared   int     `json:"keys_compared"`
	KeysDiffering  int     `json:"keys_differing"`
	RepairedLocal  int     `json:"repaired_local"`
	RepairedRemote int     `json:"repaired_remote"`
	BytesSent      int     `json:"bytes_sent"`
	BytesReceived  int     `json:"bytes_received"`
	DurationMS     float64 `json:"duration_ms"`
	// Details lists the exchanges that found differences or failed.
	Details []ExchangeStatus `json:"details"`
}

// HintsStatus is the hinted-handoff part of a node's /status.
type HintsStatus struct {
	// Stored, Delivered and Failed count, since the node started, hint
	// writes that changed a stored hint, hints acknowledged by their
	// destination, and delivery attempts that failed.
	Stored    uint64 `json:"stored"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// Dropped counts hints refused or deleted by the caps, by reason
	// (bytes, age, corrupt).
	Dropped map[string]uint64 `json:"dropped"`
	// Targets has one entry per node this node holds hints for or has
	// delivered to, sorted by id.
	Targets []HintTarget `json:"targets"`
	// RatePerSecond is the current cap on hints delivered per second (0:
	// none); it adapts between the hinted-handoff driver's minimum and
	// maximum rates when both are set.
	RatePerSecond float64 `json:"rate_per_second"`
	// RepairMarked lists (at most 256 of) the partitions marked for
	// anti-entropy since this node started because hints for them were
	// dropped, and MarkedCount how many there are. The list is cumulative;
	// anti-entropy's own status says which repairs are still pending.
	RepairMarked []uint32 `json:"repair_marked,omitempty"`
	MarkedCount  int      `json:"repair_marked_count"`
}

// HintTarget is one target of hinted handoff in /status.
type HintTarget struct {
	Target string `json:"target"`
	Alive  bool   `json:"alive"` // as gossip sees it
	OnRing bool   `json:"on_ring"`
	// Pending and Bytes are the hints held now and their size in the store.
	Pending int   `json:"pending"`
	Bytes   int64 `json:"bytes"`
	// OldestAgeSeconds is the age of the oldest hint (0 when none).
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Delivering is true while a delivery pass runs.
	Delivering bool `json:"delivering"`
	// Failures counts consecutive failed passes; RetryInSeconds is the
	// backoff left before the next (0: none); LastError is the last
	// failure's cause.
	Failures       int     `json:"failures"`
	RetryInSeconds float64 `json:"retry_in_seconds"`
	LastError      string  `json:"last_error,omitempty"`
	// Delivered, Failed and Dropped count since the node started.
	Delivered uint64            `json:"delivered"`
	Failed    uint64            `json:"failed"`
	Dropped   map[string]uint64 `json:"dropped,omitempty"`
}
