package listing

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/quorumkv/quorumkv/vclock"
)

// Entry is one record of a replica's page.
type Entry struct {
	Hash uint64
	Key  []byte
	Set  vclock.Set
}

// Page is one replica's answer for a partition: Entries in ring order, all
// records with hash in [from, Next) considered, or with Done, all to the end
// of the partition.
type Page struct {
	Entries []Entry
	Next    uint64
	Done    bool
	// Scanned is how many records the replica read for the page.
	Scanned int
}

// Merged is the merge of the pages of one partition.
type Merged struct {
	// Keys are the live keys, in ring order.
	Keys [][]byte
	// Next is where the partition's next page starts, unless Done.
	Next uint64
	// Done: the partition has no key at or after Next.
	Done bool
	// Scanned is the most records one replica read for its page.
	Scanned int
}

// Live reports whether a key whose replicas merged to s is listed: it has
// a sibling that is not a tombstone. (When values carry deadlines, an
// expired sibling counts as a tombstone here, as it does on reads.)
func Live(s vclock.Set) bool { return !s.IsDeleted() }

// Merge merges the pages that several replicas returned for the same
// partition and starting position. The merged page reaches only as far as
// the shortest unfinished page: past it some replica has not spoken, so
// entries there are left for the next page. A key is merged over every
// page that holds it (vclock.Sync) and listed if the result is Live, so a
// replica's stale value loses to another's tombstone. pages are not
// modified; Keys alias their entries' keys.
func Merge(pages []Page) Merged {
	m := Merged{Done: true}
	for _, p := range pages {
		m.Scanned = max(m.Scanned, p.Scanned)
		if !p.Done && (m.Done || p.Next < m.Next) {
			m.Next, m.Done = p.Next, false
		}
	}
	var all []Entry
	for _, p := range pages {
		for _, e := range p.Entries {
			if m.Done || e.Hash < m.Next {
				all = append(all, e)
			}
		}
	}
	slices.SortStableFunc(all, compareEntries)
	for i := 0; i < len(all); {
		j, set := i+1, all[i].Set
		for ; j < len(all) && compareEntries(all[i], all[j]) == 0; j++ {
			set = vclock.Sync(set, all[j].Set)
		}
		if Live(set) {
			m.Keys = append(m.Keys, all[i].Key)
		}
		i = j
	}
	return m
}

func compareEntries(a, b Entry) int {
	if c := cmp.Compare(a.Hash, b.Hash); c != 0 {
		return c
	}
	return bytes.Compare(a.Key, b.Key)
}
