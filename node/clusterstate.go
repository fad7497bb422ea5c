package node

import "github.com/quorumkv/quorumkv/ringstate"

// MemberRecord is one member's entry in the ring state (ringstate.MemberRecord).
type MemberRecord = ringstate.MemberRecord

// ClusterState is the ring membership, gossiped and persisted
// (ringstate.State).
type ClusterState = ringstate.State

// DecodeClusterState parses untrusted bytes from gossip or disk
// (ringstate.Decode).
func DecodeClusterState(b []byte) (ClusterState, error) { return ringstate.Decode(b) }
