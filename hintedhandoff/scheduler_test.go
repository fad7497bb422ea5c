package hintedhandoff

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSchedulerOnePassPerTarget(t *testing.T) {
	s := NewScheduler(Backoff{Base: time.Second, Max: 8 * time.Second}, time.Minute)
	if got := s.Plan(t0, []string{"a", "b"}, nil); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("first plan: %v", got)
	}
	if got := s.Plan(t0, []string{"a", "b"}, nil); len(got) != 0 {
		t.Fatalf("targets with a running pass planned again: %v", got)
	}
	if !s.State("a", t0).Running {
		t.Fatal("state does not show the running pass")
	}
	if at := s.Finish("a", t0, Drained, 0, nil); !at.IsZero() {
		t.Fatalf("drained pass schedules a retry at %v", at)
	}
	if got := s.Plan(t0, []string{"a", "b"}, nil); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after a drained pass: %v, want [a]", got)
	}
}

func TestSchedulerEligibility(t *testing.T) {
	s := NewScheduler(Backoff{}, 0)
	dead := map[string]bool{"b": true}
	asked := []string{}
	got := s.Plan(t0, []string{"a", "b", "c"}, func(id string) bool {
		asked = append(asked, id)
		return !dead[id]
	})
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("plan %v, want [a c]", got)
	}
	// Running targets are not asked about again.
	asked = nil
	s.Plan(t0, []string{"a", "b", "c"}, func(id string) bool { asked = append(asked, id); return true })
	if !slices.Equal(asked, []string{"b"}) {
		t.Fatalf("eligible asked about %v, want only [b]", asked)
	}
}

// A failing target is left alone for a delay that doubles per consecutive
// failure; Revive (the target was seen alive) and a drained pass reset it.
func TestSchedulerBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 4 * time.Second}
	s := NewScheduler(b, 0)
	now := t0
	wantDelays := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, want := range wantDelays {
		if got := s.Plan(now, []string{"a"}, nil); len(got) != 1 {
			t.Fatalf("attempt %d not planned at %v", i, now)
		}
		err := errors.New("refused")
		at := s.Finish("a", now, Failed, 0.999999999, err)
		if d := at.Sub(now); d < want*99/100 || d > want {
			t.Fatalf("failure %d: retry in %v, want about %v", i+1, d, want)
		}
		st := s.State("a", now)
		if st.Failures != i+1 || st.LastError != "refused" || st.RetryIn != at.Sub(now) {
			t.Fatalf("state after failure %d: %+v", i+1, st)
		}
		if got := s.Plan(at.Add(-time.Nanosecond), []string{"a"}, nil); len(got) != 0 {
			t.Fatal("planned during backoff")
		}
		now = at
	}
	s.Revive("a")
	if st := s.State("a", now); st.Failures != 0 || st.RetryIn != 0 {
		t.Fatalf("after Revive: %+v", st)
	}
	s.Plan(now, []string{"a"}, nil)
	s.Finish("a", now, Failed, 0, nil)
	if got := s.Plan(now, []string{"a"}, nil); len(got) != 0 {
		t.Fatal("planned during backoff")
	}
	s.Revive("a")
	if got := s.Plan(now, []string{"a"}, nil); len(got) != 1 {
		t.Fatal("Revive did not clear the backoff")
	}
	s.Finish("a", now, Interrupted, 0, nil)
	if st := s.State("a", now); st.Running || st.Failures != 0 {
		t.Fatalf("after an interrupted pass: %+v", st)
	}
	s.Revive("never-seen") // no state, no panic
}

func TestSchedulerDropReports(t *testing.T) {
	s := NewScheduler(Backoff{}, 10*time.Second)
	type step struct {
		at         time.Duration
		n          int
		wantReport bool
		wantSince  int
	}
	for i, st := range []step{
		{0, 1, true, 1}, // first drop: report at once
		{time.Second, 1, false, 0},
		{5 * time.Second, 3, false, 0},
		{10 * time.Second, 1, true, 5}, // one period later: the 5 since
		{11 * time.Second, 2, false, 0},
		{30 * time.Second, 1, true, 3},
	} {
		rep, since := s.Dropped("a", DropBytes, st.n, t0.Add(st.at))
		if rep != st.wantReport || since != st.wantSince {
			t.Fatalf("step %d: report %v since %d, want %v %d", i, rep, since, st.wantReport, st.wantSince)
		}
	}
	s.Dropped("a", DropAge, 7, t0)
	got := s.State("a", t0).Dropped
	if got["bytes"] != 9 || got["age"] != 7 || len(got) != 2 {
		t.Fatalf("dropped counts %v", got)
	}
	if rep, _ := s.Dropped("b", DropAge, 1, t0); !rep {
		t.Fatal("reports are per target")
	}
}

func TestSchedulerCountsAndTargets(t *testing.T) {
	s := NewScheduler(Backoff{}, 0)
	s.Delivered("b", 5, 2)
	s.Delivered("a", 1, 0)
	s.Delivered("b", 1, -4) // negative counts are ignored
	if st := s.State("b", t0); st.Delivered != 6 || st.Failed != 2 {
		t.Fatalf("b: %+v", st)
	}
	if got := s.Targets(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("targets %v", got)
	}
	if st := s.State("zz", t0); st.Running || st.Delivered != 0 || st.Dropped != nil {
		t.Fatalf("unknown target: %+v", st)
	}
}

func TestSchedulerExpiryDue(t *testing.T) {
	s := NewScheduler(Backoff{}, 0)
	l := Limits{MaxAge: 64 * time.Minute}
	h := Held{Count: 1, Oldest: t0}
	now := t0.Add(2 * time.Hour)
	if _, run := s.ExpiryDue("a", l, h, now); !run {
		t.Fatal("first expiry not due")
	}
	if _, run := s.ExpiryDue("a", l, h, now.Add(30*time.Second)); run {
		t.Fatal("expiry due again within MaxAge/ExpiryGranularity")
	}
	if _, run := s.ExpiryDue("a", l, h, now.Add(time.Minute)); !run {
		t.Fatal("expiry not due after MaxAge/ExpiryGranularity")
	}
	if _, run := s.ExpiryDue("b", l, h, now); !run {
		t.Fatal("expiry throttling leaks between targets")
	}
}

// The Scheduler against a naive model: a set of running targets and a
// retry time per target, driven by random plans, finishes and revivals.
func TestSchedulerModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		b := Backoff{Base: time.Second, Max: 16 * time.Second}
		s := NewScheduler(b, 0)
		ids := []string{"a", "b", "c", "d"}
		running := map[string]bool{}
		retryAt := map[string]time.Time{}
		failures := map[string]int{}
		now := t0
		rt.Repeat(map[string]func(*rapid.T){
			"advance": func(rt *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 20000).Draw(rt, "ms")) * time.Millisecond)
			},
			"plan": func(rt *rapid.T) {
				alive := map[string]bool{}
				for _, id := range ids {
					alive[id] = rapid.Bool().Draw(rt, "alive "+id)
				}
				got := s.Plan(now, ids, func(id string) bool { return alive[id] })
				var want []string
				for _, id := range ids {
					if !running[id] && !now.Before(retryAt[id]) && alive[id] {
						want = append(want, id)
						running[id] = true
					}
				}
				if !slices.Equal(got, want) {
					rt.Fatalf("plan at %v: %v, want %v", now, got, want)
				}
			},
			"finish": func(rt *rapid.T) {
				var run []string
				for _, id := range ids {
					if running[id] {
						run = append(run, id)
					}
				}
				if len(run) == 0 {
					rt.Skip("nothing running")
				}
				id := rapid.SampledFrom(run).Draw(rt, "id")
				res := rapid.SampledFrom([]Result{Drained, Failed, Interrupted}).Draw(rt, "res")
				j := rapid.Float64Range(0, 1).Draw(rt, "jitter")
				at := s.Finish(id, now, res, j, fmt.Errorf("x"))
				running[id] = false
				switch res {
				case Drained:
					failures[id], retryAt[id] = 0, time.Time{}
				case Failed:
					failures[id]++
					d := b.Delay(failures[id], j)
					retryAt[id] = now.Add(d)
					// The naive schedule: Base·2^(f-1) capped at Max, then
					// jittered within its upper half.
					full := b.Base << min(failures[id]-1, 10)
					full = min(full, b.Max)
					if d < full/2 || d > full {
						rt.Fatalf("delay %v outside [%v, %v]", d, full/2, full)
					}
				}
				if !at.Equal(retryAt[id]) {
					rt.Fatalf("Finish returned %v, model %v", at, retryAt[id])
				}
			},
			"revive": func(rt *rapid.T) {
				id := rapid.SampledFrom(ids).Draw(rt, "id")
				s.Revive(id)
				failures[id], retryAt[id] = 0, time.Time{}
			},
			"": func(rt *rapid.T) {
				for _, id := range ids {
					st := s.State(id, now)
					if st.Running != running[id] || st.Failures != failures[id] {
						rt.Fatalf("%s: state %+v, model running=%v failures=%d", id, st, running[id], failures[id])
					}
				}
			},
		})
	})
}
