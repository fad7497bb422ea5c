package antientropy

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// schedStep is one call on a Scheduler[string] and what it must return.
type schedStep struct {
	op    string // set, remove, mark, next, done, fail, wake
	p     uint32
	peers []string
	t     int // seconds after t0
	last  int // set: last exchange, seconds after t0; -1000000 = never
	dead  []string
	// next: expected job ("" = none); wake: expected wake time (-1 = none)
	want     string
	wantWake int
}

const never = -1_000_000

func TestScheduler(t *testing.T) {
	const interval, backoff = 100 * time.Second, 10 * time.Second
	ab := []string{"a", "b"}
	tests := []struct {
		name  string
		steps []schedStep
	}{
		{"new partitions are due at once, paced over the interval", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "set", p: 2, peers: ab, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "done", t: 1},
			{op: "next", t: 1, want: ""}, // pace: 100 s / 2 partitions
			{op: "wake", t: 1, wantWake: 50},
			{op: "next", t: 50, want: "2/a"},
			{op: "done", t: 51},
			{op: "wake", t: 51, wantWake: 101}, // partition 1 due again
			{op: "next", t: 101, want: "1/b"},  // next peer in turn
			{op: "done", t: 102},
			{op: "next", t: 151, want: "2/b"},
		}},
		{"least recently exchanged goes first", []schedStep{
			{op: "set", p: 1, peers: ab, last: -150},
			{op: "set", p: 2, peers: ab, last: -300},
			{op: "set", p: 3, peers: ab, last: -200},
			{op: "next", t: 0, want: "2/a"},
			{op: "done", t: 0},
			{op: "next", t: 40, want: "3/a"},
			{op: "done", t: 40},
			{op: "next", t: 80, want: "1/a"},
		}},
		{"one exchange at a time", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "set", p: 2, peers: ab, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "next", t: 500, want: ""},
			{op: "mark", p: 2},
			{op: "next", t: 500, want: ""},
			{op: "wake", t: 500, wantWake: -1},
			{op: "done", t: 501},
			{op: "next", t: 501, want: "2/a repair"},
		}},
		{"repairs go first, unpaced, oldest mark first", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "set", p: 2, peers: ab, last: 0},
			{op: "set", p: 3, peers: ab, last: 0},
			{op: "next", t: 0, want: "1/a"},
			{op: "done", t: 1},
			{op: "mark", p: 3},
			{op: "mark", p: 2},
			{op: "wake", t: 1, wantWake: 1},
			{op: "next", t: 1, want: "3/a repair"},
			{op: "done", t: 2},
			{op: "next", t: 2, want: "2/a repair"},
			{op: "done", t: 3},
			{op: "next", t: 3, want: ""}, // marks cleared, nothing due
			{op: "wake", t: 3, wantWake: 101},
		}},
		{"a failure is retried after the backoff with the next peer", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "fail", t: 1},
			{op: "next", t: 2, want: ""},
			{op: "wake", t: 2, wantWake: 11},
			{op: "next", t: 11, want: "1/b"},
			{op: "done", t: 12},
			{op: "wake", t: 12, wantWake: 112},
		}},
		{"a failed exchange does not use up a pacing slot", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "set", p: 2, peers: ab, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "fail", t: 1},
			{op: "next", t: 1, want: "2/a"},
			{op: "done", t: 2},
			{op: "next", t: 11, want: ""}, // partition 1 may retry, but paced
			{op: "next", t: 51, want: "1/b"},
		}},
		{"a failed repair keeps its mark", []schedStep{
			{op: "set", p: 1, peers: ab, last: 0},
			{op: "mark", p: 1},
			{op: "next", t: 5, want: "1/a repair"},
			{op: "fail", t: 6},
			{op: "next", t: 7, want: ""},
			{op: "next", t: 16, want: "1/b repair"},
			{op: "done", t: 17},
			{op: "next", t: 18, want: ""},
		}},
		{"a mark during the exchange survives it", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "mark", p: 1},
			{op: "done", t: 1},
			{op: "next", t: 1, want: "1/b repair"},
		}},
		{"dead peers are skipped", []schedStep{
			{op: "set", p: 1, peers: []string{"a", "b", "c"}, last: never},
			{op: "next", t: 0, dead: []string{"a"}, want: "1/b"},
			{op: "done", t: 1},
			{op: "next", t: 101, dead: []string{"c"}, want: "1/a"},
		}},
		{"no live peer postpones the partition", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "set", p: 2, peers: []string{"c"}, last: never},
			{op: "next", t: 0, dead: ab, want: "2/c"},
			{op: "done", t: 0},
			{op: "wake", t: 0, wantWake: 50}, // retry at 10, next paced slot at 50
			{op: "next", t: 50, want: "1/a"},
		}},
		{"restored last exchange", []schedStep{
			{op: "set", p: 1, peers: ab, last: -50},
			{op: "next", t: 0, want: ""},
			{op: "wake", t: 0, wantWake: 50},
			{op: "set", p: 1, peers: ab, last: -80}, // older: ignored
			{op: "wake", t: 0, wantWake: 50},
		}},
		{"partition without peers is never scheduled", []schedStep{
			{op: "set", p: 1, peers: nil, last: never},
			{op: "next", t: 0, want: ""},
			{op: "wake", t: 0, wantWake: -1},
		}},
		{"partition removed while running", []schedStep{
			{op: "set", p: 1, peers: ab, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "remove", p: 1},
			{op: "done", t: 1},
			{op: "next", t: 1, want: ""},
			{op: "wake", t: 1, wantWake: -1},
		}},
		{"peers replaced", []schedStep{
			{op: "set", p: 1, peers: []string{"a", "b", "c"}, last: never},
			{op: "next", t: 0, want: "1/a"},
			{op: "done", t: 0},
			{op: "set", p: 1, peers: []string{"x"}, last: never},
			{op: "next", t: 100, want: "1/x"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScheduler[string](interval, backoff)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				switch st.op {
				case "set":
					last := time.Time{}
					if st.last != never {
						last = at(st.last)
					}
					s.SetPartition(st.p, st.peers, last)
				case "remove":
					s.RemovePartition(st.p)
				case "mark":
					s.MarkNeedsRepair(st.p)
				case "next":
					alive := func(p string) bool { return !slices.Contains(st.dead, p) }
					job, ok := s.Next(at(st.t), alive)
					got := ""
					if ok {
						got = fmt.Sprintf("%d/%s", job.Partition, job.Peer)
						if job.Repair {
							got += " repair"
						}
					}
					if got != st.want {
						t.Fatalf("step %d: Next(%d s) = %q, want %q", i, st.t, got, st.want)
					}
				case "done":
					s.Done(at(st.t), nil)
				case "fail":
					s.Done(at(st.t), errors.New("peer down"))
				case "wake":
					w, ok := s.NextWake(at(st.t))
					got := -1
					if ok {
						got = int(w.Sub(t0) / time.Second)
					}
					if got != st.wantWake {
						t.Fatalf("step %d: NextWake(%d s) = %d, want %d", i, st.t, got, st.wantWake)
					}
				default:
					t.Fatalf("unknown op %q", st.op)
				}
			}
		})
	}
}

// Marked counts marked partitions until their exchange succeeds: a failed
// one stays marked, the one running counts.
func TestSchedulerMarked(t *testing.T) {
	s, _ := NewScheduler[string](time.Hour, time.Second)
	s.SetPartition(1, []string{"a"}, t0)
	s.SetPartition(2, []string{"a"}, t0)
	if n := s.Marked(); n != 0 {
		t.Fatalf("Marked with nothing marked = %d", n)
	}
	s.MarkNeedsRepair(1)
	s.MarkNeedsRepair(2)
	s.MarkNeedsRepair(2)
	if n := s.Marked(); n != 2 {
		t.Fatalf("Marked after marking 1 and 2 = %d, want 2", n)
	}
	job, ok := s.Next(t0, nil)
	if !ok {
		t.Fatal("no job for a marked partition")
	}
	if n := s.Marked(); n != 2 {
		t.Fatalf("Marked while %d runs = %d, want 2", job.Partition, n)
	}
	s.Done(t0, errors.New("peer down"))
	if n := s.Marked(); n != 2 {
		t.Fatalf("Marked after a failed exchange = %d, want 2", n)
	}
	for range 2 {
		if _, ok := s.Next(t0.Add(time.Minute), nil); !ok {
			t.Fatal("no job for a marked partition")
		}
		s.Done(t0.Add(time.Minute), nil)
	}
	if n := s.Marked(); n != 0 {
		t.Fatalf("Marked after both exchanges succeeded = %d, want 0", n)
	}
}

func TestSchedulerMisc(t *testing.T) {
	if _, err := NewScheduler[string](0, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewScheduler with a zero interval and backoff: %v", err)
	}
	if _, err := NewScheduler[string](time.Minute, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewScheduler with a zero backoff: %v", err)
	}
	s, _ := NewScheduler[string](10*time.Minute, 30*time.Second)
	if s.MarkNeedsRepair(9) {
		t.Errorf("MarkNeedsRepair of an unknown partition reported true")
	}
	if _, ok := s.LastExchange(9); ok {
		t.Errorf("LastExchange of an unknown partition")
	}
	s.Done(t0, nil) // nothing running: no effect
	peers := []string{"a"}
	s.SetPartition(4, peers, time.Time{})
	peers[0] = "changed"
	job, ok := s.Next(t0, nil)
	if !ok || job.Peer != "a" {
		t.Errorf("Next = %+v, %v; the peers slice must be copied", job, ok)
	}
	if r, ok := s.Running(); !ok || r != job {
		t.Errorf("Running = %+v, %v", r, ok)
	}
	s.Done(at(5), nil)
	if last, ok := s.LastExchange(4); !ok || !last.Equal(at(5)) {
		t.Errorf("LastExchange = %v, %v", last, ok)
	}
}
