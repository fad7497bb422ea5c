package api

// RingPlan is the body of GET /admin/ring/plan and of the answers of POST
// /admin/ring/stage, /admin/ring/commit and /admin/ring/clear: the staged
// ring changes (joins, leaves, removes) and what applying them moves, with
// the balance and zone spread before and after.
type RingPlan struct {
	// Node is the node that answered.
	Node string `json:"node"`
	// Version names this plan: a digest of the staged changes and of the
	// placement and members they apply to (16 hex digits; "" when nothing
	// is staged). POST /admin/ring/commit?version=V applies the staged
	// changes only while their plan is still of version V.
	Version string `json:"version,omitempty"`
	// Partitions is Q, N the replicas placed per partition.
	Partitions int `json:"partitions"`
	N          int `json:"n"`
	// Joins, Leaves and Removes are the changes staged (for commit and
	// clear: those committed or dropped).
	Joins   []StagedJoin `json:"joins,omitempty"`
	Leaves  []string     `json:"leaves,omitempty"`
	Removes []string     `json:"removes,omitempty"`
	// MovedPartitions counts the partitions whose owners change,
	// MovedReplicas the partition copies made (one per new owner), of
	// which Rebuilt are rebuilt from surviving replicas because their old
	// owner is removed; IdealReplicas is the least any placement with the
	// same balance would copy.
	MovedPartitions int     `json:"moved_partitions"`
	MovedReplicas   int     `json:"moved_replicas"`
	IdealReplicas   float64 `json:"ideal_replicas"`
	Rebuilt         int     `json:"rebuilt,omitempty"`
	// CoordinatorsChanged counts partitions whose first primary changes.
	CoordinatorsChanged int `json:"coordinators_changed"`
	// Bytes estimates the data copied; BytesNote says how it was
	// estimated.
	Bytes     int64  `json:"bytes"`
	BytesNote string `json:"bytes_note,omitempty"`
	// Before and After describe the placement now and after the change.
	Before RingBalance `json:"before"`
	After  RingBalance `json:"after"`
	// Status says what a commit or clear did ("" for a plan).
	Status string `json:"status,omitempty"`
	// Warnings name staged changes that cannot complete as they are (a
	// leave of a member that is down).
	Warnings []string `json:"warnings,omitempty"`
}

// StagedJoin is a member waiting in the plan to join.
type StagedJoin struct {
	ID   string `json:"id"`
	Zone string `json:"zone,omitempty"`
	// By names who staged it: the member itself (--join-mode staged) or
	// an admin.
	By string `json:"by,omitempty"`
}

// RingBalance is a placement's balance and zone spread.
type RingBalance struct {
	Members int `json:"members"`
	// Replicas and First are max/mean of replicas and of first
	// primaries per member; ...OverIdeal the largest load over that
	// member's ideal (weights and zones accounted for).
	ReplicasMaxOverMean  float64 `json:"replicas_max_over_mean"`
	ReplicasMaxOverIdeal float64 `json:"replicas_max_over_ideal"`
	FirstMaxOverMean     float64 `json:"first_max_over_mean"`
	FirstMaxOverIdeal    float64 `json:"first_max_over_ideal"`
	// Zones counts distinct zones; ZoneGuarantee says whether every
	// partition's N primaries are in N distinct zones, ZoneReason why not.
	Zones         int    `json:"zones"`
	ZoneGuarantee bool   `json:"zone_guarantee"`
	ZoneReason    string `json:"zone_reason,omitempty"`
	// PerMember and PerZone are the loads, ids and zones ascending.
	PerMember []MemberLoad `json:"per_member,omitempty"`
	PerZone   []ZoneLoad   `json:"per_zone,omitempty"`
}

// MemberLoad is one member's partitions in a placement.
type MemberLoad struct {
	ID            string  `json:"id"`
	Zone          string  `json:"zone,omitempty"`
	Replicas      int     `json:"replicas"`
	IdealReplicas float64 `json:"ideal_replicas"`
	First         int     `json:"first"`
	IdealFirst    float64 `json:"ideal_first"`
}

// ZoneLoad is one zone's partitions in a placement.
type ZoneLoad struct {
	Zone     string `json:"zone"`
	Members  int    `json:"members"`
	Replicas int    `json:"replicas"`
	First    int    `json:"first"`
}

// CodeConflict is the code of a 409 answer: the request does not fit the
// cluster's state (a ring change that cannot be staged or committed, a
// member that cannot be removed).
const CodeConflict = "conflict"
