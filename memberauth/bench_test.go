package memberauth

import (
	"fmt"
	"testing"
)

// BenchmarkVerify: one new record (a signature check), and one equal to
// the record held (what most of a push/pull repeats).
func BenchmarkVerify(b *testing.B) {
	i := identity(b, "n1", 1)
	r := sign(b, i, Record{ID: "n1", RPC: "10.0.0.1:7100", HTTP: "10.0.0.1:8080", Version: 9, Incarnation: 3})
	next := r
	next.Version++
	next = sign(b, i, next)
	st := state{"n1": r}
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Verify(next, st.lookup, Policy{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Verify(r, st.lookup, Policy{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFilter: a gossiped state of n members against a node that holds
// them all, with changed records (each a signature check) or none.
func BenchmarkFilter(b *testing.B) {
	for _, n := range []int{10, 100} {
		held, changed, same := state{}, map[string]Record{}, map[string]Record{}
		for k := range n {
			id := fmt.Sprintf("n%d", k)
			i := identity(b, id, uint64(k))
			r := sign(b, i, Record{ID: id, RPC: "10.0.0.1:7100", Version: 1, Incarnation: 1})
			held[id], same[id] = r, r
			r.Version++
			changed[id] = sign(b, i, r)
		}
		for name, in := range map[string]map[string]Record{"unchanged": same, "all-changed": changed} {
			b.Run(fmt.Sprintf("members=%d/%s", n, name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if ok, _ := Filter(in, held.lookup, Policy{}); len(ok) != n {
						b.Fatal(len(ok))
					}
				}
			})
		}
	}
}
