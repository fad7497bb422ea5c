package resp

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/quorum"
)

// Backend is what the RESP front needs of the node it serves: what the
// HTTP front needs (quorum reads and writes, the parameters fitted to the
// ring), QUORUM's check and what INFO shows. Package node implements both
// with one unexported adapter. RESP has no place for the write and fit
// warnings that httpapi turns into headers: INFO shows the effective N and
// counts writes that left siblings.
type Backend interface {
	httpapi.Backend
	// Check refuses parameters the ring cannot serve (QUORUM's check).
	Check(p quorum.Params) error
	// Info describes the node and its cluster, for INFO.
	Info() Info
}

// Info is the node's side of INFO's quorumkv section.
type Info struct {
	NodeID, HTTPAddr string
	// RingMembers is the ring's size, MembersAlive the members gossip
	// sees alive (this node included).
	RingMembers, MembersAlive, Partitions int
	// EffectiveN is Backend.DefaultN.
	EffectiveN int
	Sync       bool
	// SiblingWrites and SiblingWarnings count, on both fronts, writes
	// that left siblings and those over the warning threshold.
	SiblingWrites, SiblingWarnings uint64
	Members                        []api.Member
}

// Config is what a Server is built with; every field is required.
type Config struct {
	// MaxKeySize and MaxValueSize bound keys and values (TOOLARGE).
	MaxKeySize, MaxValueSize int
	// Defaults are the node's quorum parameters.
	Defaults quorum.Params
	// Contexts signs and checks the tokens of QGET, QSET and QDEL.
	Contexts httpapi.Contexts
	// Auth authenticates clients (AUTH, HELLO AUTH) and authorizes each
	// command by role; nil: authentication off (auth.go).
	Auth *auth.Authenticator
	Log  *slog.Logger
	// Registry gets the RESP counters; QuorumFailures (by op) and
	// SiblingsPerRead are the node-wide metrics both fronts feed.
	Registry        prometheus.Registerer
	QuorumFailures  *prometheus.CounterVec
	SiblingsPerRead prometheus.Observer
	// Version is the one-word build version (HELLO, INFO); Started is
	// when the process started (INFO's uptime).
	Version string
	Started time.Time
}
