package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func zoned(spec ...string) []Member {
	// spec: "id@zone" or "id@zone*weight"
	var ms []Member
	for _, s := range spec {
		id, zone, _ := strings.Cut(s, "@")
		w := 0
		if z, ws, ok := strings.Cut(zone, "*"); ok {
			zone = z
			fmt.Sscan(ws, &w)
		}
		ms = append(ms, Member{ID: NodeID(id), Zone: zone, Weight: w})
	}
	return ms
}

func claimCfg(q, n int) Config { return Config{Mode: ModeClaim, Partitions: q, Replicas: n} }

func mustPlan(t *testing.T, cfg Config, prev *Assignment, ms []Member) (*Assignment, *Ring) {
	t.Helper()
	a, err := Plan(cfg, prev, ms)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	r, err := FromAssignment(cfg, a)
	if err != nil {
		t.Fatalf("FromAssignment: %v", err)
	}
	return a, r
}

// Zones of 5, 5 and 1 members at N=3: every partition needs one replica in
// each zone, so the lone member holds every partition (its ideal is Q),
// the others a fifth each, and the guarantee holds.
func TestPlanUnevenZones(t *testing.T) {
	ms := zoned("a1@a", "a2@a", "a3@a", "a4@a", "a5@a", "b1@b", "b2@b", "b3@b", "b4@b", "b5@b", "c1@c")
	_, r := mustPlan(t, claimCfg(1024, 3), nil, ms)
	st := r.Stats(3)
	for _, l := range st.Loads {
		want := 1024.0 / 5
		if l.ID == "c1" {
			want = 1024
		}
		if l.IdealReplicas != want || float64(l.Replicas) < want-1 || float64(l.Replicas) > want+1 {
			t.Errorf("%s: %d replicas, ideal %.1f, want %.1f", l.ID, l.Replicas, l.IdealReplicas, want)
		}
	}
	if !st.Zones.Held || st.Zones.MinZones != 3 || st.Zones.MaxPerZone != 1 {
		t.Errorf("zones: %+v", st.Zones)
	}
	if st.Replicas.MaxOverIdeal > 1.01 || st.First.MaxOverIdeal > 1.1 {
		t.Errorf("balance: replicas %+v, first %+v", st.Replicas, st.First)
	}
	// First primaries do not follow the zone constraint: c1 coordinates
	// its weight's share, not a third of everything.
	for _, l := range st.Loads {
		if l.First < 93 || l.First > 94 {
			t.Errorf("%s coordinates %d partitions, want 1024/11 = 93.1", l.ID, l.First)
		}
	}
}

// With fewer zones than N, replicas spread as evenly as the zones allow
// and ZoneStatus says the guarantee does not hold.
func TestPlanFewerZonesThanN(t *testing.T) {
	tests := []struct {
		name       string
		ms         []Member
		n          int
		maxPerZone int
	}{
		{"two zones N=3", zoned("a1@a", "a2@a", "a3@a", "b1@b", "b2@b", "b3@b"), 3, 2},
		{"two zones N=4", zoned("a1@a", "a2@a", "a3@a", "b1@b", "b2@b", "b3@b"), 4, 2},
		{"one lone member N=3", zoned("a1@a", "a2@a", "a3@a", "b1@b"), 3, 2},
		{"no zones", zoned("a", "b", "c", "d"), 3, 3},
		{"three zones N=5", zoned("a1@a", "a2@a", "b1@b", "b2@b", "c1@c", "c2@c"), 5, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, r := mustPlan(t, claimCfg(256, tc.n), nil, tc.ms)
			st := r.ZoneStatus(tc.n)
			if st.Held || st.Reason == "" || st.Below != 0 || st.MaxPerZone != tc.maxPerZone || st.MinZones != min(r.ZoneCount(), tc.n) {
				t.Errorf("ZoneStatus = %+v, want not held, max %d per zone, every zone present", st, tc.maxPerZone)
			}
			t.Log(st.Reason)
		})
	}
}

func TestPlanDeterministicAndStable(t *testing.T) {
	ms := zoned("a@x", "b@y", "c@z", "d@x", "e@y*2", "f@z")
	cfg := claimCfg(64, 3)
	a1, _ := mustPlan(t, cfg, nil, ms)
	a2, _ := mustPlan(t, cfg, nil, reversed(ms))
	if !a1.Equal(a2) || a1.Version() != 1 {
		t.Fatalf("same members gave different plans, or version %d", a1.Version())
	}
	if b, _ := mustPlan(t, cfg, a1, ms); b != a1 {
		t.Error("replanning an unchanged member set changed the assignment")
	}
	b, _ := mustPlan(t, cfg, a1, append(slices.Clone(ms), Member{ID: "g", Zone: "z"}))
	if b.Version() != 2 {
		t.Errorf("version after a join = %d, want 2", b.Version())
	}
}

func TestPlanErrors(t *testing.T) {
	a, _ := mustPlan(t, claimCfg(64, 3), nil, names(4))
	tests := []struct {
		name string
		cfg  Config
		prev *Assignment
		ms   []Member
		want error
	}{
		{"other Q than prev", claimCfg(128, 3), a, names(4), ErrInvalidAssignment},
		{"bad replicas", claimCfg(64, MaxReplicas+1), nil, names(4), ErrInvalidConfig},
		{"negative replicas", claimCfg(64, -1), nil, names(4), ErrInvalidConfig},
		{"unknown mode", Config{Mode: 9}, nil, names(4), ErrInvalidConfig},
		{"long zone", claimCfg(64, 3), nil, []Member{{ID: "a", Zone: strings.Repeat("z", MaxZoneLen+1)}}, ErrInvalidMember},
		{"duplicate", claimCfg(64, 3), nil, []Member{{ID: "a"}, {ID: "a", Zone: "x"}}, ErrDuplicateMember},
		{"too many members", claimCfg(1, 3), nil, names(MaxAssignmentMembers + 1), ErrTooLarge},
		{"too many placements", claimCfg(MaxPartitions, 3), nil, names(MaxPlacements/MaxPartitions + 1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := Plan(tc.cfg, tc.prev, tc.ms); !errors.Is(err, tc.want) || got != nil {
				t.Errorf("Plan = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := FromAssignment(claimCfg(128, 3), a); !errors.Is(err, ErrInvalidAssignment) {
		t.Errorf("FromAssignment with another Q: %v", err)
	}
	if _, err := FromAssignment(Config{}, nil); !errors.Is(err, ErrInvalidAssignment) {
		t.Errorf("FromAssignment(nil): %v", err)
	}
}

// Fewer members than N: every member owns every partition, and a member
// that joins takes its slot everywhere without moving anything else.
func TestPlanFewerMembersThanN(t *testing.T) {
	cfg := claimCfg(16, 3)
	a, r := mustPlan(t, cfg, nil, names(2))
	for p := range uint32(16) {
		if len(a.Owners(p)) != 2 {
			t.Fatalf("partition %d owners %v", p, a.Owners(p))
		}
	}
	if st := r.ZoneStatus(3); st.Held || !strings.Contains(st.Reason, "2 members") {
		t.Errorf("ZoneStatus = %+v", st)
	}
	_, r2 := mustPlan(t, cfg, a, names(3))
	e := Explain(r, r2, 3)
	if e.Moved != 16 || e.IdealMoved != 16 {
		t.Errorf("third member moved %d (ideal %.0f), want 16", e.Moved, e.IdealMoved)
	}
	_, empty := mustPlan(t, cfg, a, nil)
	if empty.Len() != 0 || empty.Preference(0) != nil || empty.Targets(0, 3, nil) != nil {
		t.Error("plan of no members has owners")
	}
}

// New in ModeClaim is a plan from nothing; DefaultConfig is ModeClaim.
func TestNewClaim(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Mode != ModeClaim || cfg.Partitions != DefaultPartitions || cfg.Replicas != 3 {
		t.Fatalf("DefaultConfig = %+v", cfg)
	}
	r := mustNew(t, cfg, names(7))
	a, err := Plan(cfg, nil, names(7))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Assignment().Equal(a) || r.Mode() != ModeClaim {
		t.Error("New(claim) differs from Plan(nil)")
	}
	if l := LegacyConfig(); l.Mode != ModeTokens || l.Partitions != 256 || l.Tokens != 64 {
		t.Errorf("LegacyConfig = %+v", l)
	}
	if (Config{}).withDefaults().Mode != ModeTokens {
		t.Error("zero Mode is not ModeTokens")
	}
}

// A token ring's assignment is the starting point of a migration to
// ModeClaim: Plan keeps what is in range and moves only the excess.
func TestPlanFromTokenRing(t *testing.T) {
	ms := names(40)
	tok := mustNew(t, LegacyConfig(), ms)
	cfg := claimCfg(LegacyPartitions, 3)
	_, claim := mustPlan(t, cfg, tok.Assignment(), ms)
	e := Explain(tok, claim, 3)
	t.Logf("tokens -> claim at 40 members: moved %d (ideal %.1f) of %d; balance %.3f -> %.3f", e.Moved, e.IdealMoved, 3*256, e.Before.Replicas.MaxOverMean, e.After.Replicas.MaxOverMean)
	if e.After.Replicas.MaxOverIdeal > 1.05 || float64(e.Moved) > 1.5*e.IdealMoved {
		t.Errorf("migration: %s", e)
	}
}

// Preference in ModeClaim: owners in order, then fallbacks in zones
// holding no replica first, a zone at a time.
func TestClaimPreferenceZones(t *testing.T) {
	ms := zoned("a1@a", "a2@a", "a3@a", "b1@b", "b2@b", "c1@c", "c2@c", "d1@d", "d2@d")
	_, r := mustPlan(t, claimCfg(64, 3), nil, ms)
	for p := range uint32(64) {
		pl := r.Preference(p)
		seen := map[string]int{}
		for _, id := range pl[:3] {
			seen[r.Zone(id)]++
		}
		// The first fallback is the zone without a replica (d is... the
		// one zone of a b c d not among the owners).
		if len(seen) != 3 || seen[r.Zone(pl[3])] != 0 {
			t.Fatalf("partition %d: %v, first fallback %s in a zone holding a replica", p, pl, pl[3])
		}
		// Ranks never decrease: a zone's second fallback comes after every
		// zone's first.
		for j := 3; j < len(pl); j++ {
			seen[r.Zone(pl[j])]++
		}
		if !slices.Equal(slices.Sorted(slices.Values(pl)), r.Members()) {
			t.Fatalf("partition %d: %v is not every member once", p, pl)
		}
	}
}

// Targets prefers a stand-in in a zone that holds no replica yet: for a
// dead primary of zone a, the first live fallback of zone a or of a zone
// without replicas, even if another fallback comes first.
func TestTargetsZones(t *testing.T) {
	// Built by hand: partition 0's owners are b1 c1 a1; its fallbacks are
	// d1 (zone d holds no replica: rank 0), then a2 and b2 (rank 1) in
	// score order.
	a := &Assignment{version: 1, q: 1, n: 3, rowWidth: 3,
		members: zoned("a1@a*1", "a2@a*1", "b1@b*1", "b2@b*1", "c1@c*1", "d1@d*1"),
		owners:  []uint16{2, 4, 0}}
	r, err := FromAssignment(Config{}, a)
	if err != nil {
		t.Fatal(err)
	}
	pl := r.Preference(0)
	if !slices.Equal(pl[:4], ids("b1 c1 a1 d1")) {
		t.Fatalf("preference %v", pl)
	}
	dead := func(ds ...NodeID) func(NodeID) bool {
		return func(id NodeID) bool { return !slices.Contains(ds, id) }
	}
	got := r.Targets(0, 3, dead("a1"))
	if !slices.Equal(got, []Target{{Node: "b1"}, {Node: "c1"}, {Node: "d1", HintFor: "a1"}}) {
		t.Errorf("Targets with a1 dead = %v (preference %v)", got, pl)
	}
	zs := map[string]bool{}
	for _, tg := range got {
		zs[r.Zone(tg.Node)] = true
	}
	if len(zs) != 3 {
		t.Errorf("targets %v span %d zones", got, len(zs))
	}
	// d1 dead too: b2's zone holds b1, a2's holds no live target (a1 is
	// dead), so a2 stands in whatever the score order.
	got = r.Targets(0, 3, dead("a1", "d1"))
	if !slices.Equal(got, []Target{{Node: "b1"}, {Node: "c1"}, {Node: "a2", HintFor: "a1"}}) {
		t.Errorf("Targets with a1, d1 dead = %v (preference %v)", got, pl)
	}
	// b1 and c1 dead: a1 holds zone a, so d1 then the fallback not of
	// zone a (b2) stand in, skipping a2 whatever the score order.
	got = r.Targets(0, 3, dead("b1", "c1"))
	if !slices.Equal(got, []Target{{Node: "a1"}, {Node: "d1", HintFor: "b1"}, {Node: "b2", HintFor: "c1"}}) {
		t.Errorf("Targets with b1, c1 dead = %v (preference %v)", got, pl)
	}
	zs = map[string]bool{}
	for _, tg := range got {
		zs[r.Zone(tg.Node)] = true
	}
	if len(got) != 3 || len(zs) != 3 {
		t.Errorf("Targets with b1, c1 dead = %v: %d zones", got, len(zs))
	}
	if n := testing.AllocsPerRun(100, func() {
		buf := make([]Target, 0, 3)
		_ = r.AppendTargets(buf[:0], 0, 3, dead("a1"))
	}); n > 2 {
		t.Errorf("AppendTargets with zones: %.0f allocations", n)
	}
}

func TestExplainString(t *testing.T) {
	cfg := claimCfg(256, 3)
	a, before := mustPlan(t, cfg, nil, zoned("a@x", "b@y", "c@z", "d@x", "e@y", "f@z"))
	_, after := mustPlan(t, cfg, a, zoned("a@x", "b@y", "c@z", "d@x", "e@y", "f@z", "g@x"))
	e := Explain(before, after, 3)
	s := e.String()
	for _, want := range []string{"6 members -> 7", "moves:", "zones: 3, every partition's 3 replicas in 3 distinct zones"} {
		if !strings.Contains(s, want) {
			t.Errorf("Explain.String() = %q lacks %q", s, want)
		}
	}
	// Zone x grows to 3 members: g takes a third of x's replicas.
	if e.Moved != 85 && e.Moved != 86 {
		t.Errorf("moved %d, want 256/3", e.Moved)
	}
	birth := Explain(nil, before, 3)
	if birth.Moved != 3*256 || birth.Before.Members != 0 {
		t.Errorf("birth: %+v", birth)
	}
	if tok := mustNew(t, LegacyConfig(), zoned("a@x", "b@y", "c@z", "d@x")).ZoneStatus(3); tok.Held || tok.Below == 0 {
		t.Errorf("token ring ZoneStatus = %+v", tok)
	}
}
