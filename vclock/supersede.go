package vclock

import (
	"bytes"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// Supersedes reports whether s replaces the set encoded in enc outright:
// s has a sibling, its context descends enc's context, and enc's context
// covers none of s's dots. Then Sync of the decoded enc with s is s
// itself: every sibling of enc is covered by s's context and not in s
// (dropped), every sibling of s is new to enc (kept), and the merged
// context is s's. This is the common replica merge of a write (the
// coordinator's new set over the replica's older copy of a key), decided
// from enc's context alone, without decoding enc's siblings and without
// allocating.
//
// false with a nil error means "not outright": decode enc and Sync. An
// error means enc's context does not parse (the caller's full decode
// then reports or handles it).
func Supersedes(s Set, enc []byte) (bool, error) {
	if len(s.Siblings) == 0 {
		return false, nil
	}
	k := 0 // cursor into s.Context: both are sorted by actor
	return supersedes(enc, func(node []byte, epoch, counter uint64) bool {
		for k < len(s.Context) && compareNodeActor(node, epoch, s.Context[k].Actor) > 0 {
			k++
		}
		if k == len(s.Context) || compareNodeActor(node, epoch, s.Context[k].Actor) != 0 {
			return false // an actor s has not seen: s does not descend
		}
		if s.Context[k].Counter < counter {
			return false
		}
		a := s.Context[k].Actor
		for _, sib := range s.Siblings {
			if sib.Dot.Actor == a && sib.Dot.Counter <= counter {
				return false // enc has seen this dot: Sync may drop it
			}
		}
		return true
	})
}

// supersedes reports whether every entry of enc's context, in order, is
// one that covered accepts (Supersedes' test of that entry, for a set of
// siblings). An error means enc's context does not parse, or is out of
// order.
func supersedes(enc []byte, covered func(node []byte, epoch, counter uint64) bool) (bool, error) {
	r, n, err := contextReader(enc)
	if err != nil {
		return false, err
	}
	var prevNode []byte
	var prevEpoch uint64
	for i := range n {
		node, epoch, counter, err := readEntryRaw(&r)
		if err != nil {
			return false, err
		}
		if i > 0 {
			if c := bytes.Compare(prevNode, node); c > 0 || c == 0 && epoch <= prevEpoch {
				return false, ErrMalformed // unsorted or duplicate: let the decoder say so
			}
		}
		prevNode, prevEpoch = node, epoch
		if !covered(node, epoch, counter) {
			return false, nil
		}
	}
	return true, nil
}

// compareNodeActor orders the actor (node, epoch), node as read from an
// encoding, against a, as compareActors does.
func compareNodeActor(node []byte, epoch uint64, a Actor) int {
	if c := compareNode(node, a.Node); c != 0 {
		return c
	}
	switch {
	case epoch < a.Epoch:
		return -1
	case epoch > a.Epoch:
		return 1
	}
	return 0
}

// compareNode compares a node id read from an encoding with one held as
// a string, bytewise, without converting either.
func compareNode(b []byte, s string) int {
	for i := 0; i < len(b) && i < len(s); i++ {
		if b[i] != s[i] {
			if b[i] < s[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(b) < len(s):
		return -1
	case len(b) > len(s):
		return 1
	}
	return 0
}

// AppendContextOnly appends to b the encoding of the set encoded in enc
// with its siblings left out: enc's context and no sibling, so that
// DecodeSet of the result is Set{Context: DecodeSet(enc).Context}. It
// copies the context's bytes as they are, reading its entries only to
// find where they end (their order is checked by the decoder that
// receives them), and never decodes the siblings: a replica answers an
// overwrite's read with it (it needs the context only) straight from its
// stored record. An error means enc's context does not parse; b is then
// returned unchanged.
func AppendContextOnly(b, enc []byte) ([]byte, error) {
	r, n, err := contextReader(enc)
	if err != nil {
		return b, err
	}
	for range n {
		if _, _, _, err := readEntryRaw(&r); err != nil {
			return b, err
		}
	}
	b = append(b, enc[:len(enc)-r.Len()]...)
	return wire.AppendArrayLen(b, 0), nil
}

// contextReader starts reading the set encoded in enc at its context's
// entries: it returns the reader there and their count.
func contextReader(enc []byte) (wire.Reader, int, error) {
	r, err := formatReader(enc, setFormatV1)
	if err != nil {
		return r, 0, err
	}
	r.Array(2)
	n, err := readCount(&r, MaxActors, minEntryRaw)
	return r, n, err
}
