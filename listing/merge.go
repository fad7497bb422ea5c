package listing

import (
	"bytes"
	"slices"

	"github.com/quorumkv/quorumkv/vclock"
)

// Entry is one record of a replica's page.
type Entry struct {
	Hash uint64
	Key  []byte
	Set  vclock.Set
}

// Page is one replica's answer for a partition: Entries in byte order of
// their keys, from Start; all records with Start <= key < NextKey
// considered, or with Done, all to the end of the partition (or of the
// prefix). Resolved false: the replica could not place a page asked from
// a cursor (it holds no key of that hash), and the page is empty.
type Page struct {
	Entries  []Entry
	Start    []byte
	Resolved bool
	NextKey  []byte
	NextHash uint64
	Done     bool
	// Scanned is how many records the replica read for the page.
	Scanned int
}

// Merged is the merge of the pages of one partition.
type Merged struct {
	// Keys are the live keys, in byte order.
	Keys [][]byte
	// NextKey (of hash NextHash) is where the partition's next page
	// starts, unless Done.
	NextKey  []byte
	NextHash uint64
	// Done: the partition has no key at or after NextKey (within the
	// prefix).
	Done bool
	// Scanned is the most records one replica read for its page.
	Scanned int
}

// Live reports whether a key whose replicas merged to s is listed at now
// (Unix nanoseconds): it has a sibling that is neither a tombstone nor
// past its deadline, as reads judge it (vclock.Set.IsDeletedAt).
func Live(s vclock.Set, now int64) bool { return !s.IsDeletedAt(now) }

// Merge merges the pages that several replicas returned for the same
// partition and start. The merged page reaches only as far as the
// smallest NextKey of an unfinished page: past it some replica has not
// spoken, so entries there are left for the next page. A key is merged
// over every page that holds it (vclock.Sync) and listed if the result is
// Live, so a replica's stale value loses to another's tombstone; now
// judges deadlines (Live). pages are not modified; Keys alias their
// entries' keys.
func Merge(pages []Page, now int64) Merged {
	m := Merged{Done: true}
	for _, p := range pages {
		m.Scanned = max(m.Scanned, p.Scanned)
		if !p.Done && (m.Done || bytes.Compare(p.NextKey, m.NextKey) < 0) {
			m.NextKey, m.NextHash, m.Done = p.NextKey, p.NextHash, false
		}
	}
	var all []Entry
	for _, p := range pages {
		for _, e := range p.Entries {
			if m.Done || bytes.Compare(e.Key, m.NextKey) < 0 {
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
		if Live(set, now) {
			m.Keys = append(m.Keys, all[i].Key)
		}
		i = j
	}
	return m
}

// compareEntries orders the entries of one partition: by key (a key has
// one hash).
func compareEntries(a, b Entry) int { return bytes.Compare(a.Key, b.Key) }
