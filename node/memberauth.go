package node

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
)

// Ring state integrity (issue 13): each member signs its own record with
// its data directory's ed25519 identity, and a record from gossip is merged
// only if memberauth.Verify accepts it against the records this node holds
// (the first key seen for an id is pinned). An admin remove is a tombstone
// signed by the member that carried it out. Versions saturate
// (memberauth.NextVersion) instead of wrapping.

// metaMemberKey names the identity's seed in the store's meta (on disk:
// never rename it). It lives and dies with the directory's incarnation.
const metaMemberKey = "member-key"

// ErrRecentlyAlive refuses a remove of a member seen alive within
// Security.RemoveMinDown: a crash and restart, a network blip or a slow
// node is not a member down for good. Force overrides it.
var ErrRecentlyAlive = errors.New("member was seen alive recently")

// loadIdentity reads this directory's member identity, or makes and
// persists one (a new directory, or one written before identities).
func (n *Node) loadIdentity() error {
	b, err := n.st.GetMeta(metaMemberKey)
	switch {
	case err == nil:
		id, perr := memberauth.ParseIdentity(n.cfg.NodeID, b)
		if perr != nil {
			return fmt.Errorf("stored member key: %w", perr)
		}
		n.id = id
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read member key: %w", err)
	}
	id, err := memberauth.NewIdentity(n.cfg.NodeID, nil)
	if err != nil {
		return err
	}
	seed, err := id.MarshalBinary()
	if err != nil {
		return err
	}
	if err := n.st.PutMeta(metaMemberKey, seed); err != nil {
		return fmt.Errorf("persist member key: %w", err)
	}
	n.id = id
	return nil
}

// signOwnLocked signs rec, this node's own record. Caller holds mu.
func (n *Node) signOwnLocked(rec MemberRecord) MemberRecord {
	s, err := n.id.Sign(rec)
	if err != nil {
		// Only a record of another id fails; never ours.
		n.log.Error("sign own member record", "err", err)
		return rec
	}
	return s
}

// verifyMembersLocked keeps, of a gossiped state's records, those
// memberauth accepts against what this node holds, and logs the others
// (rate-limited). During a rolling upgrade from the release before signed
// records (AcceptV1Peers), unsigned records of members this node holds no
// key for are taken. Caller holds mu.
func (n *Node) verifyMembersLocked(in map[string]MemberRecord) map[string]MemberRecord {
	ok, bad := memberauth.Filter(in, func(id string) (MemberRecord, bool) {
		r, ok := n.state.Members[id]
		return r, ok
	}, memberauth.Policy{RekeyNewIncarnation: n.cfg.Secret != "", AcceptUnsigned: n.cfg.AcceptV1Peers})
	out := make(map[string]MemberRecord, len(ok))
	for _, r := range ok {
		out[r.ID] = r
	}
	// A removal of an earlier incarnation of this id is kept for
	// mergeState to outbid (it never stores it): an empty rejoin.
	bad = slices.DeleteFunc(bad, func(b memberauth.Rejected) bool {
		err := memberauth.VerifyEarlierRemoval(b.Record, n.state.Members[n.cfg.NodeID], func(id string) (MemberRecord, bool) {
			r, ok := n.state.Members[id]
			return r, ok
		})
		if err == nil {
			out[b.Record.ID] = b.Record
		}
		return err == nil
	})
	if len(bad) > 0 {
		n.memberRejects += uint64(len(bad))
		if now := n.now(); now.Sub(n.memberRejectLog) >= secretLogEvery {
			n.memberRejectLog = now
			n.log.Warn("ignoring member records from gossip that do not verify (a rogue or misconfigured member?)",
				"first_id", bad[0].Record.ID, "first_err", bad[0].Err.Error(), "refused_since_start", n.memberRejects)
		}
	}
	return out
}

// noteAliveLocked records when a peer was last seen alive, for
// RemoveMember's --remove-min-down check. Caller holds mu.
func (n *Node) noteAliveLocked(id string, alive bool, was Peer, had bool) {
	if alive || (had && was.State.Up()) {
		n.seenAlive[id] = n.now()
	}
}

// removable checks that member id may be removed now: known, on the ring,
// not this node, not alive, and (unless force) not seen alive within
// RemoveMinDown. It returns the record to remove; ok false means the
// member is already off the ring.
func (n *Node) removable(id string, force bool) (MemberRecord, bool, error) {
	if id == n.cfg.NodeID {
		return MemberRecord{}, false, ErrRemoveSelf
	}
	n.mu.RLock()
	rec, known := n.state.Members[id]
	seen, wasSeen := n.seenAlive[id]
	n.mu.RUnlock()
	if !known {
		return rec, false, fmt.Errorf("%q: %w", id, ErrUnknownMember)
	}
	if rec.Left {
		return rec, false, nil
	}
	if n.Alive(ring.NodeID(id)) {
		return rec, false, fmt.Errorf("%q: %w", id, ErrAlive)
	}
	if min := n.cfg.Security.RemoveMinDown; !force && wasSeen && n.now().Sub(seen) < min {
		return rec, false, fmt.Errorf("%q: %w %s ago, within --remove-min-down %s: wait, or force it (quorumkv remove --force) if it is gone for good",
			id, ErrRecentlyAlive, n.now().Sub(seen).Round(time.Second), min)
	}
	return rec, true, nil
}
