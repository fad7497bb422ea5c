package ring

// Target is one replica a request should go to.
type Target struct {
	// Node is the member to send to.
	Node NodeID
	// HintFor names the dead primary that Node stands in for (the owner of
	// the hint a sloppy-quorum write leaves on Node); it is empty when Node
	// is itself a primary.
	HintFor NodeID
}

// Targets returns the replicas of a request on partition p with replication
// factor n, given who is alive now: first the live primaries in preference
// order, then, for each dead primary in preference order, the next live
// non-primary member in preference order, with HintFor naming that dead
// primary. Each fallback stands in for exactly one dead primary and no
// member appears twice. When too few members are alive the result has fewer
// than n entries (and dead primaries at the end of the order get no stand-in).
//
// alive is called synchronously, possibly more than once per member; nil
// means every member is alive. The result is a fresh slice.
func (r *Ring) Targets(p uint32, n int, alive func(NodeID) bool) []Target {
	pl := r.Preference(p)
	if n <= 0 || pl == nil {
		return nil
	}
	return r.AppendTargets(make([]Target, 0, min(n, len(pl))), p, n, alive)
}

// AppendTargets is Targets appending to dst, so that a caller reusing a
// buffer makes no allocation.
func (r *Ring) AppendTargets(dst []Target, p uint32, n int, alive func(NodeID) bool) []Target {
	pl := r.Preference(p)
	n = min(n, len(pl))
	if n <= 0 {
		return dst
	}
	if alive == nil {
		alive = func(NodeID) bool { return true }
	}
	for _, id := range pl[:n] {
		if alive(id) {
			dst = append(dst, Target{Node: id})
		}
	}
	j := n // next fallback candidate
	for _, id := range pl[:n] {
		if alive(id) {
			continue
		}
		for j < len(pl) && !alive(pl[j]) {
			j++
		}
		if j == len(pl) {
			break
		}
		dst = append(dst, Target{Node: pl[j], HintFor: id})
		j++
	}
	return dst
}
