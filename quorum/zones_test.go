package quorum

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
)

// zonedRing returns a claim ring with one partition of six members, two
// in each of zones x, y and z, placed at N=3 (so the primaries are in
// three distinct zones), and its preference list.
func zonedRing(t testing.TB) (*ring.Ring, []ring.NodeID) {
	t.Helper()
	var ms []ring.Member
	for _, z := range []string{"x", "y", "z"} {
		for i := range 2 {
			ms = append(ms, ring.Member{ID: ring.NodeID(fmt.Sprintf("%s%d", z, i)), Zone: z})
		}
	}
	r, err := ring.New(ring.Config{Mode: ring.ModeClaim, Partitions: 1, Replicas: 3}, ms)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.Preference(0)
}

// newZonedCoord is newTestCoord on zonedRing, self the first primary.
func newZonedCoord(t testing.TB, defaults Params) *testCoord {
	t.Helper()
	r, pref := zonedRing(t)
	tc := &testCoord{pref: pref, self: pref[0], m: &fakeMembership{r: r, dead: map[ring.NodeID]bool{}}}
	tc.reps = newFakeReplicas(tc.self)
	defaults.Timeout = time.Second
	c, err := New(Config{Self: tc.self, Membership: tc.m, Replicas: tc.reps, Defaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	tc.Coordinator = c
	return tc
}

// A failed target's stand-in is a spare in a zone that holds no written
// target yet, even when a spare of another zone comes first in the
// preference list: the write keeps reaching as many zones as it can.
func TestPlanWriteFallbackPrefersUnheldZone(t *testing.T) {
	r, pref := zonedRing(t)
	// Fail the primary whose zone is not the first spare's: the first
	// spare's zone still holds a target, so the spare of the failed
	// primary's zone must be chosen over it.
	var failed ring.NodeID
	for _, id := range pref[:3] {
		if r.Zone(id) != r.Zone(pref[3]) {
			failed = id
			break
		}
	}
	var want ring.NodeID
	for _, id := range pref[3:] {
		if r.Zone(id) == r.Zone(failed) {
			want = id
		}
	}
	pl := planWrite(r, func(ring.NodeID) bool { return true }, pref[0], "put", ring.Key{Key: []byte("k")}, Params{N: 3, W: 2}, nil)
	got := pl.onFailure(ring.Target{Node: failed}, true, func(ring.NodeID) bool { return true })
	if got.fallback != (ring.Target{Node: want, HintFor: failed}) {
		t.Fatalf("failure of %s (zone %s) falls back on %+v, want %s of the same zone (first spare %s, zone %s)",
			failed, r.Zone(failed), got.fallback, want, pref[3], r.Zone(pref[3]))
	}
	// With that zone's spare dead, the nearest live spare stands in.
	pl = planWrite(r, func(ring.NodeID) bool { return true }, pref[0], "put", ring.Key{Key: []byte("k")}, Params{N: 3, W: 2}, nil)
	got = pl.onFailure(ring.Target{Node: failed}, true, func(id ring.NodeID) bool { return id != want })
	if got.fallback.Node == "" || got.fallback.Node == want || r.Zone(got.fallback.Node) == r.Zone(failed) {
		t.Fatalf("with %s dead the failure of %s falls back on %+v", want, failed, got.fallback)
	}
}

// pz=K: the write answers only once its acks span K zones, reports the
// zones reached, and is refused up front when the live replicas span
// fewer; pz above n and negative pz are parameter errors.
func TestPutZones(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newZonedCoord(t, Params{N: 3, R: 2, W: 2})
		defer tc.Close()
		p := tc.pref
		r := tc.m.r
		// The second primary answers fast, the third late: W=2 alone
		// answers with two zones; pz=3 waits for the third.
		tc.reps.set(p[1], behaviour{delay: time.Millisecond})
		tc.reps.set(p[2], behaviour{delay: 50 * time.Millisecond})
		res, err := tc.put(t, "v", Params{})
		if err != nil || res.Acks.Zones != 2 || res.Acks.Total() != 2 {
			t.Fatalf("w=2: %+v %v, want 2 acks in 2 zones", res, err)
		}
		start := time.Now()
		res, err = tc.put(t, "v", Params{PZ: 3})
		if err != nil || res.Acks.Zones != 3 || res.Acks.Total() != 3 || time.Since(start) < 50*time.Millisecond {
			t.Fatalf("pz=3: %+v %v after %s, want 3 acks in 3 zones after the late one", res, err, time.Since(start))
		}
		tc.Wait()

		// The third primary's zone down entirely: a write at pz=2 still
		// succeeds; pz=3 is refused before anything is written.
		var down []ring.NodeID
		for _, id := range p {
			if r.Zone(id) == r.Zone(p[2]) {
				down = append(down, id)
			}
		}
		tc.m.kill(down...)
		res, err = tc.put(t, "v", Params{PZ: 2})
		if err != nil || res.Acks.Zones != 2 {
			t.Fatalf("pz=2 with zone %s down: %+v %v", r.Zone(p[2]), res, err)
		}
		tc.Wait() // the pz=2 write's calls to the dead zone settle first
		before := len(tc.reps.recorded())
		_, err = tc.put(t, "v", Params{PZ: 3})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.RequiredZones != 3 || !strings.Contains(err.Error(), "pz=3: the live replicas span 2 zone(s) (the ring has 3)") {
			t.Fatalf("pz=3 with a zone down: %v", err)
		}
		if len(tc.reps.recorded()) != before {
			t.Fatalf("a refused pz=3 write reached replicas")
		}
		tc.Wait()

		for _, pz := range []int{4, -1} {
			if _, err := tc.put(t, "v", Params{PZ: pz}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("pz=%d: %v, want a parameter error", pz, err)
			}
		}
	})
}

// A replica that fails after the plan leaves the write short of a zone:
// the tracker fails it with the zone counts once no outstanding reply can
// add one.
func TestWriteTrackerZones(t *testing.T) {
	tr := NewWriteTracker(2, 0, 0)
	tr.RequireZones(3)
	for range 4 {
		tr.Add(true)
	}
	if d := tr.RecordZone(0, true, false, nil); d != Pending {
		t.Fatalf("1 ack: %v", d)
	}
	if d := tr.RecordZone(0, true, false, nil); d != Pending || tr.Acks().Zones != 1 {
		t.Fatalf("2 acks in one zone: %v, zones %d", d, tr.Acks().Zones)
	}
	if d := tr.RecordZone(1, true, false, errReplica); d != Failed || tr.Acks().Total() != 2 {
		t.Fatalf("no reply left to reach 3 zones: %v", d)
	}
	if err := tr.Err("put"); err.RequiredZones != 3 || err.ZoneAcks != 1 || !strings.Contains(err.Error(), "1 of 3 required zones") {
		t.Fatalf("error %v", err)
	}
	// Uncounted zones (-1) count nothing; zones past 64 wrap, never adding.
	tr = NewWriteTracker(1, 0, 0)
	tr.Add(true)
	tr.Add(true)
	tr.RecordZone(-1, true, false, nil)
	tr.RecordZone(64, true, false, nil)
	if z := tr.Acks().Zones; z != 1 {
		t.Fatalf("zones %d, want 1", z)
	}
}

func TestParseParamsPZ(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]string
		want int
		err  string
	}{
		{map[string]string{"pz": "2"}, 2, ""},
		{map[string]string{"pz": "all", "n": "5"}, 5, ""},
		{map[string]string{"pz": "0"}, 0, ""},
		{map[string]string{"pz": "-1"}, 0, "pz=-1: cannot be negative"},
		{map[string]string{"pz": "racks"}, 0, `pz: "racks" is not a number`},
	} {
		p, err := ParseParams(func(name string) (string, bool) { s, ok := tc.in[name]; return s, ok }, 3)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("%v: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p.PZ != tc.want {
			t.Errorf("%v: pz %d %v, want %d", tc.in, p.PZ, err, tc.want)
		}
	}
	if err := (Params{N: 3, R: 2, W: 2, PZ: 4}).Validate(6, 0); err == nil || !strings.Contains(err.Error(), "pz=4: cannot exceed n=3") {
		t.Errorf("pz above n: %v", err)
	}
}
