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
// order, then, for each dead primary in preference order, a live
// non-primary member standing in for it, with HintFor naming that dead
// primary. The stand-in is the first live unused fallback in preference
// order whose zone holds none of the targets chosen so far (so a dead
// primary's zone, or a zone with no replica, is preferred and the write
// still reaches as many zones as it can); if every live fallback's zone
// already holds one, the first live unused fallback. Without zones (every
// member in one zone) that is simply the next live fallback in preference
// order. Each fallback stands in for exactly one dead primary and no
// member appears twice. When too few members are alive the result has
// fewer than n entries (and dead primaries at the end of the order get no
// stand-in).
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
	start := len(dst)
	for _, id := range pl[:n] {
		if alive(id) {
			dst = append(dst, Target{Node: id})
		}
	}
	if r.nzones > 1 {
		return r.appendZoneFallbacks(dst, start, pl, n, alive)
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

// appendZoneFallbacks appends the stand-ins for the dead primaries among
// pl[:n] when members have zones; dst[start:] are the targets so far.
func (r *Ring) appendZoneFallbacks(dst []Target, start int, pl []NodeID, n int, alive func(NodeID) bool) []Target {
	for _, id := range pl[:n] {
		if alive(id) {
			continue
		}
		pick := -1
		for j := n; j < len(pl); j++ {
			c := pl[j]
			if !alive(c) || chosen(dst[start:], c) {
				continue
			}
			if pick < 0 {
				pick = j // first live unused, if no zone is better
			}
			if !r.zoneHeld(dst[start:], r.zoneIdx[r.index(c)]) {
				pick = j
				break
			}
		}
		if pick < 0 {
			break
		}
		dst = append(dst, Target{Node: pl[pick], HintFor: id})
	}
	return dst
}

func chosen(ts []Target, id NodeID) bool {
	for _, t := range ts {
		if t.Node == id {
			return true
		}
	}
	return false
}

// zoneHeld reports whether a target in ts is in zone z.
func (r *Ring) zoneHeld(ts []Target, z int32) bool {
	for _, t := range ts {
		if r.zoneIdx[r.index(t.Node)] == z {
			return true
		}
	}
	return false
}

// index returns the position of member id in r.ids; id must be a member.
func (r *Ring) index(id NodeID) int {
	lo, hi := 0, len(r.ids)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if r.ids[h] < id {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo
}
