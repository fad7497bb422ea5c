package resp

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

// Backend is what the RESP front needs of the node it serves: quorum
// reads and writes, the parameters fitted to the ring, and what INFO
// shows. Package node implements it with an unexported adapter.
type Backend interface {
	// Read runs a quorum read of key with p.
	Read(ctx context.Context, key []byte, p quorum.Params) (vclock.Set, error)
	// Write runs a quorum write of req: with exactly req.Context, or with
	// overwrite, over what a read at p's R sees (a delete of a key with no
	// live value then writes nothing and returns a nil result).
	Write(ctx context.Context, req quorum.PutRequest, overwrite bool) (*quorum.WriteResult, error)
	// Fit gives p that names no N the ring's size when the ring is
	// smaller than the default N.
	Fit(p quorum.Params) (quorum.Params, error)
	// DefaultN is the N a request that gives none runs with.
	DefaultN() int
	// Check refuses parameters the ring cannot serve (QUORUM's check).
	Check(p quorum.Params) error
	// Info describes the node and its cluster, for INFO.
	Info() Info
}

// Contexts encodes and decodes the causal context tokens that QGET
// returns and QSET/QDEL take (the node signs them).
type Contexts interface {
	EncodeContext(v vclock.Vector) string
	DecodeContext(s string) (vclock.Vector, error)
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
	Contexts Contexts
	Log      *slog.Logger
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
