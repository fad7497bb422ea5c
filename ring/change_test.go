package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestPlanChangeTable checks PlanChange on staged joins, leaves and
// removes from a six-member, three-zone cluster at Q=64, N=3: the moves and
// bytes it reports against a Diff computed here, the balance and zone
// spread after, and its errors.
func TestPlanChangeTable(t *testing.T) {
	cfg := claimCfg(64, 3)
	six := zoned("a1@a", "a2@a", "b1@b", "b2@b", "c1@c", "c2@c")
	committed, before := mustPlan(t, cfg, nil, six)
	sizes := make([]int64, 64)
	for p := range sizes {
		sizes[p] = int64(1000 + p)
	}
	tests := []struct {
		name string
		ch   Change
		// want: members after, whether the zone guarantee holds after,
		// whether every lost replica belongs to a removed member
		members   int
		held      bool
		rebuilt   bool
		wantErr   string
		noBytes   bool
		wantMoves bool
	}{
		{name: "nothing staged", members: 6, held: true},
		{name: "join", ch: Change{Joins: zoned("d1@a")}, members: 7, held: true, wantMoves: true},
		{name: "two joins in new zone", ch: Change{Joins: zoned("e2@e", "e1@e")}, members: 8, held: true, wantMoves: true},
		{name: "leave", ch: Change{Leaves: []NodeID{"b2"}}, members: 5, held: true, wantMoves: true},
		{name: "remove", ch: Change{Removes: []NodeID{"c1"}}, members: 5, held: true, wantMoves: true, rebuilt: true},
		{name: "join, leave and remove at once", ch: Change{Joins: zoned("d1@c"), Leaves: []NodeID{"a1"}, Removes: []NodeID{"c2"}}, members: 5, held: true, wantMoves: true},
		{name: "a zone emptied", ch: Change{Leaves: []NodeID{"c1"}, Removes: []NodeID{"c2"}}, members: 4, held: false, wantMoves: true},
		{name: "no sizes", ch: Change{Joins: zoned("d1@a")}, members: 7, held: true, wantMoves: true, noBytes: true},
		{name: "join of a member", ch: Change{Joins: zoned("a1@a")}, wantErr: `"a1" joins but is already a member`},
		{name: "leave of a stranger", ch: Change{Leaves: []NodeID{"zz"}}, wantErr: `leave of "zz", which is not a member`},
		{name: "remove of a stranger", ch: Change{Removes: []NodeID{"zz"}}, wantErr: `remove of "zz", which is not a member`},
		{name: "leave and remove", ch: Change{Leaves: []NodeID{"a1"}, Removes: []NodeID{"a1"}}, wantErr: `"a1" is staged twice (leave and remove)`},
		{name: "joined twice", ch: Change{Joins: zoned("d1@a", "d1@b")}, wantErr: `"d1" is staged twice (join and join)`},
		{name: "everyone leaves", ch: Change{Leaves: []NodeID{"a1", "a2", "b1", "b2"}, Removes: []NodeID{"c1", "c2"}}, wantErr: "without members"},
		{name: "bad joiner", ch: Change{Joins: []Member{{ID: "x", Zone: string(make([]byte, MaxZoneLen+1))}}}, wantErr: "zone of 65 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sz := sizes
			if tc.noBytes {
				sz = nil
			}
			cp, err := PlanChange(cfg, committed, six, tc.ch, sz)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !errors.Is(err, ErrInvalidChange) && !errors.Is(err, ErrInvalidMember) {
					t.Fatalf("err = %v: neither ErrInvalidChange nor ErrInvalidMember", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cp.Members) != tc.members {
				t.Fatalf("%d members after, want %d", len(cp.Members), tc.members)
			}
			// The plan is what every node computes after the commit.
			want, err := Plan(cfg, committed, cp.Members)
			if err != nil || !want.Equal(cp.Next) {
				t.Fatalf("Next is not Plan(committed, members after): %v", err)
			}
			after, err := FromAssignment(cfg, cp.Next)
			if err != nil {
				t.Fatal(err)
			}
			moves := Diff(before, after, 3)
			if (len(moves) > 0) != tc.wantMoves || len(cp.Moves) != len(moves) {
				t.Fatalf("%d moves, Diff has %d, want some: %v", len(cp.Moves), len(moves), tc.wantMoves)
			}
			var bytes int64
			gained, rebuilt := 0, 0
			for _, mv := range moves {
				bytes += sizes[mv.Partition] * int64(len(mv.Gained))
				gained += len(mv.Gained)
				for _, id := range mv.Lost {
					if slices.Contains(tc.ch.Removes, id) {
						rebuilt++
					}
				}
			}
			if cp.Moved != gained || cp.Rebuilt != rebuilt {
				t.Fatalf("moved %d rebuilt %d, want %d and %d", cp.Moved, cp.Rebuilt, gained, rebuilt)
			}
			if tc.rebuilt {
				if held := before.Load(3)[tc.ch.Removes[0]]; rebuilt != held {
					t.Fatalf("rebuilt %d, the removed member held %d", rebuilt, held)
				}
			}
			switch {
			case tc.noBytes && len(moves) > 0:
				if cp.BytesKnown || cp.Bytes != 0 {
					t.Fatalf("bytes %d known=%v without sizes", cp.Bytes, cp.BytesKnown)
				}
			case !cp.BytesKnown || cp.Bytes != bytes:
				t.Fatalf("bytes %d known=%v, want %d", cp.Bytes, cp.BytesKnown, bytes)
			}
			if cp.After.Zones.Held != tc.held || (cp.After.Zones.Reason == "") != tc.held {
				t.Fatalf("zone status after %+v, want held=%v", cp.After.Zones, tc.held)
			}
			if cp.After.Replicas.MaxOverIdeal > 1.2 || cp.After.First.MaxOverIdeal > 1.5 {
				t.Fatalf("balance after: replicas %.3f first %.3f of ideal", cp.After.Replicas.MaxOverIdeal, cp.After.First.MaxOverIdeal)
			}
			checkZoneLoads(t, cp.ZonesAfter, cp.After, 64*3)
			checkZoneLoads(t, cp.ZonesBefore, cp.Before, 64*3)
			// The order in which changes are staged does not matter.
			rev := Change{Joins: reversed(tc.ch.Joins), Leaves: slices.Clone(tc.ch.Leaves), Removes: slices.Clone(tc.ch.Removes)}
			slices.Reverse(rev.Leaves)
			again, err := PlanChange(cfg, committed, reversed(six), rev, sz)
			if err != nil || !again.Next.Equal(cp.Next) || again.Bytes != cp.Bytes || !slices.Equal(again.Change.Leaves, cp.Change.Leaves) {
				t.Fatalf("another staging order planned otherwise (%v)", err)
			}
		})
	}
}

// checkZoneLoads checks per zone totals against the member loads.
func checkZoneLoads(t *testing.T, zl []ZoneLoad, st Stats, replicas int) {
	t.Helper()
	members, reps, first := 0, 0, 0
	for i, z := range zl {
		if i > 0 && zl[i-1].Zone >= z.Zone {
			t.Fatalf("zones not ascending: %+v", zl)
		}
		members += z.Members
		reps += z.Replicas
		first += z.First
	}
	if members != len(st.Loads) || (len(st.Loads) > 0 && (reps != replicas || first != st.Partitions)) {
		t.Fatalf("zone loads %+v: %d members %d replicas %d first, stats have %d members", zl, members, reps, first, len(st.Loads))
	}
}

// At cluster birth (no committed assignment) every replica is a move.
func TestPlanChangeBirth(t *testing.T) {
	cfg := claimCfg(16, 3)
	cp, err := PlanChange(cfg, nil, nil, Change{Joins: zoned("a@x", "b@y", "c@z")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Moved != 16*3 || len(cp.Moves) != 16 || cp.Before.Members != 0 || !cp.After.Zones.Held || cp.BytesKnown {
		t.Fatalf("birth plan: moved %d in %d partitions, before %d members, held %v, bytes known %v",
			cp.Moved, len(cp.Moves), cp.Before.Members, cp.After.Zones.Held, cp.BytesKnown)
	}
	if _, err := PlanChange(Config{Partitions: 3}, nil, nil, Change{Joins: zoned("a@x")}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Q=3: %v", err)
	}
}

// BenchmarkPlanChange measures what `ring plan` computes for one staged
// join into a cluster of 100 members in three zones at Q=1024, N=3.
func BenchmarkPlanChange(b *testing.B) {
	for _, m := range []int{10, 100} {
		cfg := claimCfg(1024, 3)
		ms := zonedNames(m + 1)
		committed, err := Plan(cfg, nil, ms[:m])
		if err != nil {
			b.Fatal(err)
		}
		sizes := make([]int64, 1024)
		for p := range sizes {
			sizes[p] = 1 << 20
		}
		for _, kind := range []string{"join", "leave"} {
			ch := Change{Joins: ms[m:]}
			if kind == "leave" {
				ch = Change{Leaves: []NodeID{ms[0].ID}}
			}
			b.Run(fmt.Sprintf("%s/Q=1024/members=%d", kind, m), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := PlanChange(cfg, committed, ms[:m], ch, sizes); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// The zone guarantee and balance through a cluster's life: from random
// members in random zones (up to 100 members), a sequence of staged
// changes (joins into random zones, leaves, removes, several at once)
// planned by PlanChange keeps every guarantee of Plan after each commit
// (checkPlan: with at least N zones every partition's N primaries are in N
// distinct zones, zones spread as evenly as possible otherwise, every
// member's loads within [floor, ceil] of its ideal).
func TestPropPlanChangeSequence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genClaimConfig(t)
		ms := genZonedMembers(t, 1, 100)
		a, err := Plan(cfg, nil, ms)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		for step := range rapid.IntRange(1, 4).Draw(t, "changes") {
			var ch Change
			for range rapid.IntRange(0, 3).Draw(t, "joins") {
				j := genZonedMembers(t, 1, 1)[0]
				j.ID = NodeID(fmt.Sprintf("j%d-%s", step, j.ID))
				if !slices.ContainsFunc(ch.Joins, func(m Member) bool { return m.ID == j.ID }) {
					ch.Joins = append(ch.Joins, j)
				}
			}
			for _, m := range ms {
				if len(ms)-len(ch.Leaves)-len(ch.Removes) <= 1 {
					break
				}
				switch rapid.IntRange(0, 9).Draw(t, "fate") {
				case 0:
					ch.Leaves = append(ch.Leaves, m.ID)
				case 1:
					ch.Removes = append(ch.Removes, m.ID)
				}
			}
			cp, err := PlanChange(cfg, a, ms, ch, nil)
			if err != nil {
				t.Fatalf("step %d: PlanChange: %v", step, err)
			}
			checkPlan(t, cfg, cp.Next, cp.Members)
			if cp.Next.Version() != a.Version()+1 && !cp.Next.Equal(a) {
				t.Fatalf("step %d: version %d after %d", step, cp.Next.Version(), a.Version())
			}
			a, ms = cp.Next, cp.Members
		}
	})
}
