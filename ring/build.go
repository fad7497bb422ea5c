package ring

import (
	"encoding/binary"
	"slices"
)

// tokenInput writes into buf the bytes hashed to place token i of member id,
// and returns them:
//
//	id bytes || uint32(i) big-endian
//
// for i in [0, Tokens*Weight). This layout is a compatibility promise, like
// the golden partitions of keys: changing it moves data between members of
// every existing cluster. The index has a fixed width, so two different ids
// can never produce the same input. Raising a member's weight only appends
// tokens, so its existing tokens stay where they were.
func tokenInput(buf []byte, id NodeID, i int) []byte {
	buf = append(buf[:0], id...)
	return binary.BigEndian.AppendUint32(buf, uint32(i))
}

// build computes the preference table: Q rows, row p listing every member in
// clockwise order from partition p's start.
//
// Rather than walking the tokens afresh from each partition's start (up to
// the whole ring per partition), it walks them once, backwards, from the top
// of the ring down to 0, keeping the members in a list where each token
// passed moves its member to the front. Once every token at or above a
// partition's start has been passed, the list is that partition's
// preference: members with a token at or above the start come first,
// ordered by their nearest such token (passed last, so nearer the front);
// members with none keep the initial order, which is the wrapped order, by
// their lowest token. Equal tokens are passed larger id first, so the smaller id ends up
// in front. Tokens are bucketed by partition and each bucket sorted, so the
// build costs O(total tokens * log(tokens per partition) + Q*M).
func (r *Ring) build(total int) []NodeID {
	m := len(r.ids)
	q := r.cfg.Partitions
	if m == 0 {
		return nil
	}

	// Hash every token, remembering each member's lowest one and how many
	// tokens fall in each partition.
	toks := make([]token, 0, total)
	lowest := make([]token, m)
	count := make([]int, q+1)
	buf := make([]byte, 0, MaxIDLen+4)
	for i, id := range r.ids {
		lowest[i] = token{h: ^uint64(0), idx: int32(i)}
		for t := range r.cfg.Tokens * r.weights[i] {
			buf = tokenInput(buf, id, t)
			tk := token{h: r.hash(buf), idx: int32(i)}
			toks = append(toks, tk)
			lowest[i].h = min(lowest[i].h, tk.h)
			count[r.PartitionOfHash(tk.h)+1]++
		}
	}
	// Counting sort by partition, then sort inside each partition:
	// byPart[count[p]:count[p+1]] are partition p's tokens, ascending.
	for p := range q {
		count[p+1] += count[p]
	}
	byPart := make([]token, total)
	fill := slices.Clone(count[:q])
	for _, tk := range toks {
		p := r.PartitionOfHash(tk.h)
		byPart[fill[p]] = tk
		fill[p]++
	}
	for p := range q {
		slices.SortFunc(byPart[count[p]:count[p+1]], token.compare)
	}

	// The list starts in wrapped order: by lowest token, then id. It is a
	// doubly linked list over member indexes; -1 ends it.
	slices.SortFunc(lowest, token.compare)
	next := make([]int32, m)
	prev := make([]int32, m)
	for j, tk := range lowest {
		prev[tk.idx], next[tk.idx] = -1, -1
		if j > 0 {
			prev[tk.idx] = lowest[j-1].idx
		}
		if j < m-1 {
			next[tk.idx] = lowest[j+1].idx
		}
	}
	head := lowest[0].idx

	pref := make([]NodeID, q*m)
	for p := q - 1; p >= 0; p-- {
		bucket := byPart[count[p]:count[p+1]]
		for j := len(bucket) - 1; j >= 0; j-- {
			i := bucket[j].idx
			if i == head {
				continue
			}
			// Unlink i (it is not the head, so it has a prev) and
			// push it on the front.
			next[prev[i]] = next[i]
			if next[i] >= 0 {
				prev[next[i]] = prev[i]
			}
			prev[i], next[i] = -1, head
			prev[head] = i
			head = i
		}
		row := pref[p*m : (p+1)*m]
		for j, i := 0, head; i >= 0; j, i = j+1, next[i] {
			row[j] = r.ids[i]
		}
	}
	return pref
}

// token is one token of member idx at ring position h. Members are indexed
// in id order, so ordering equal positions by idx orders them by id.
type token struct {
	h   uint64
	idx int32
}

func (a token) compare(b token) int {
	switch {
	case a.h < b.h:
		return -1
	case a.h > b.h:
		return 1
	}
	return int(a.idx - b.idx)
}
