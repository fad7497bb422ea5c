package transport

import "testing"

// The pending table hands out unique, increasing ids, finds each call
// under its own id only, skips ids whose entry an older call still holds,
// keeps its calls across growth, and stays within twice the calls it
// holds at most.
func TestPendingTable(t *testing.T) {
	var p pendingTable
	var next uint64
	const limit = 512
	calls := make(map[uint64]*call)
	var last uint64
	// One call stays pending throughout (as a slow one would), while
	// others come and go: the ids that map to its entry are skipped.
	old := &call{}
	oldID := p.add(&next, old)
	for i := range 20000 {
		cl := &call{}
		id := p.add(&next, cl)
		if id <= last || id == oldID {
			t.Fatalf("id %d after %d (old %d): not unique and increasing", id, last, oldID)
		}
		last = id
		calls[id] = cl
		if len(calls) == limit-1 || i%7 == 0 {
			for id, cl := range calls {
				if p.take(id+1<<40) != nil {
					t.Fatalf("take(%d) found a call never added", id+1<<40)
				}
				if got := p.take(id); got != cl {
					t.Fatalf("take(%d) = %p, want %p", id, got, cl)
				}
				if p.take(id) != nil {
					t.Fatalf("take(%d) twice found a call", id)
				}
				delete(calls, id)
				if len(calls) < limit/4 {
					break
				}
			}
		}
		if p.n != len(calls)+1 {
			t.Fatalf("n = %d, want %d", p.n, len(calls)+1)
		}
		if len(p.slots) > 2*limit {
			t.Fatalf("table of %d entries for at most %d calls", len(p.slots), limit)
		}
	}
	if p.take(oldID) != old {
		t.Fatal("the long-pending call was lost")
	}
	got := p.takeIf(func(*call) bool { return true }, nil)
	if len(got) != len(calls) || p.n != 0 {
		t.Fatalf("takeIf took %d of %d calls, %d left", len(got), len(calls), p.n)
	}
}

// BenchmarkPending is a calling conn's bookkeeping per call: enter a call,
// then find and remove it when its reply comes, with 32 calls pending
// (the replies of one batch). impl=map is what the table replaced.
func BenchmarkPending(b *testing.B) {
	const inflight = 32
	cl := &call{}
	b.Run("impl=table", func(b *testing.B) {
		var p pendingTable
		var next uint64
		for range inflight {
			p.add(&next, cl)
		}
		b.ReportAllocs()
		for b.Loop() {
			id := p.add(&next, cl)
			if p.take(id-inflight) == nil {
				b.Fatal("lost a call")
			}
		}
	})
	b.Run("impl=map", func(b *testing.B) {
		m := make(map[uint64]*call)
		var next uint64
		for range inflight {
			next++
			m[next] = cl
		}
		b.ReportAllocs()
		for b.Loop() {
			next++
			m[next] = cl
			id := next - inflight
			got := m[id]
			delete(m, id)
			if got == nil {
				b.Fatal("lost a call")
			}
		}
	})
}
