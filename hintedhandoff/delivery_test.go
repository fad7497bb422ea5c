package hintedhandoff

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/internal/driverenv"
	"github.com/quorumkv/quorumkv/internal/validtest"
	"github.com/quorumkv/quorumkv/internal/waitfor"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// fakeHost is a node of a two-member ring whose peer's answers the test
// scripts; it records deliveries and repair marks.
type fakeHost struct {
	r *ring.Ring

	mu        sync.Mutex
	refuse    error // what Deliver answers; nil accepts
	delivered map[string][]byte
	marked    []uint32
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	r, err := ring.New(ring.Config{Partitions: 8, Tokens: 8}, []ring.Member{{ID: "n1"}, {ID: "n2"}})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeHost{r: r, delivered: map[string][]byte{}}
}

func (h *fakeHost) Ring() *ring.Ring       { return h.r }
func (h *fakeHost) Alive(ring.NodeID) bool { return true }
func (h *fakeHost) Deliver(_ context.Context, id ring.NodeID, k ring.Key, set []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse != nil {
		return h.refuse
	}
	h.delivered[string(id)+"/"+string(k.Key)] = set
	return nil
}
func (h *fakeHost) MarkForRepair(p uint32) {
	h.mu.Lock()
	h.marked = append(h.marked, p)
	h.mu.Unlock()
}

func (h *fakeHost) snapshot() (map[string][]byte, []uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := map[string][]byte{}
	for k, v := range h.delivered {
		d[k] = v
	}
	return d, slices.Clone(h.marked)
}

func newDriver(t *testing.T, cfg Config) (*Driver, *fakeHost, *store.Store) {
	t.Helper()
	return newDriverOn(t, cfg, nil)
}

// newDriverOn is newDriver with the driver's clock (nil: the real one).
func newDriverOn(t *testing.T, cfg Config, clk clock.Clock) (*Driver, *fakeHost, *store.Store) {
	t.Helper()
	st := storetest.Open(t)
	h := newFakeHost(t)
	d, err := New(cfg, Deps{Env: driverenv.Env{Self: "n1", N: 2, CallTimeout: time.Second, Clock: clk}, Store: st, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, h, st
}

func putHint(t *testing.T, st *store.Store, target string, k ring.Key, val []byte) {
	t.Helper()
	if _, _, err := st.UpdateHint(t.Context(), target, k, false, func([]byte, bool) ([]byte, error) { return val, nil }); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, 10*time.Second, what, cond)
}

func fastConfig() Config {
	c := DefaultLocalConfig()
	c.Interval = 5 * time.Millisecond
	c.BackoffBase, c.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	return c
}

// A hint is handed to its target and deleted once acknowledged; a hint
// that does not decode is dropped and its partition marked for repair.
func TestDriverDeliversAndDropsCorrupt(t *testing.T) {
	d, h, st := newDriver(t, fastConfig())
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n1", Epoch: 3}, vclock.Value{Data: []byte("v")})
	rec, err := replica.EncodeRecord(3, s)
	if err != nil {
		t.Fatal(err)
	}
	good := h.r.KeyOf([]byte("good"))
	bad := h.r.KeyOf([]byte("bad"))
	putHint(t, st, "n2", good, rec)
	putHint(t, st, "n2", bad, []byte{7, 7, 7})
	d.Start(t.Context())
	waitFor(t, "both hints gone", func() bool { return st.HintStats("n2").Count == 0 })
	delivered, marked := h.snapshot()
	if got := delivered["n2/good"]; string(got) != string(replica.SetBytes(rec)) {
		t.Fatalf("delivered %x, want the hint's set %x", got, replica.SetBytes(rec))
	}
	if _, ok := delivered["n2/bad"]; ok {
		t.Fatal("a corrupt hint was delivered")
	}
	if !slices.Contains(marked, bad.Partition) {
		t.Fatalf("marked %v, want the corrupt hint's partition %d", marked, bad.Partition)
	}
	stat := d.Status()
	if stat.Delivered != 1 || stat.Dropped["corrupt"] != 1 || stat.MarkedCount == 0 {
		t.Fatalf("status %+v", stat)
	}
}

// A destination that refuses a hint as invalid keeps it (and the pass goes
// on); one that fails keeps it too; both count as failed attempts.
func TestDriverKeepsRefusedHints(t *testing.T) {
	for _, refusal := range []error{
		&transport.RemoteError{Code: wire.CodeInvalid, Msg: "no"},
		errors.New("connection refused"),
	} {
		d, h, st := newDriver(t, fastConfig())
		h.refuse = refusal
		s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n1", Epoch: 3}, vclock.Value{Data: []byte("v")})
		rec, _ := replica.EncodeRecord(3, s)
		putHint(t, st, "n2", h.r.KeyOf([]byte("k")), rec)
		d.Start(t.Context())
		waitFor(t, "a failed attempt", func() bool { return d.Status().Failed > 0 })
		if st.HintStats("n2").Count != 1 {
			t.Fatalf("%v: the refused hint is gone", refusal)
		}
		d.Close()
	}
}

// The delivery loop and its backoff run on the driver's clock: with a
// fake one, a failed pass is retried when that clock passes the retry
// time, whatever the process clock does.
func TestDriverBacksOffOnItsClock(t *testing.T) {
	c := fastConfig()
	c.Interval, c.BackoffBase, c.BackoffMax = time.Second, time.Minute, time.Hour
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, h, st := newDriverOn(t, c, fake)
	h.refuse = errors.New("connection refused")
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n1", Epoch: 3}, vclock.Value{Data: []byte("v")})
	rec, _ := replica.EncodeRecord(3, s)
	putHint(t, st, "n2", h.r.KeyOf([]byte("k")), rec)
	d.Start(t.Context()) // the loop's first round runs at once
	waitFor(t, "the first failed pass", func() bool { return d.Status().Failed == 1 })
	retryIn := func() float64 {
		for _, tg := range d.Status().Targets {
			if tg.Target == "n2" {
				return tg.RetryInSeconds
			}
		}
		t.Fatal("no status for n2")
		return 0
	}
	secs := retryIn()
	if secs < c.BackoffBase.Seconds()/2 || secs > c.BackoffMax.Seconds() {
		t.Fatalf("retry in %vs, want a jittered backoff from %v to %v", secs, c.BackoffBase/2, c.BackoffMax)
	}
	retry := time.Duration(secs * float64(time.Second))
	fake.Advance(retry / 2)
	if got, want := retryIn(), secs-(retry/2).Seconds(); math.Abs(got-want) > 1e-6 {
		t.Fatalf("retry in %vs after the clock moved %v, want %vs", got, retry/2, want)
	}
	if got := d.Status().Failed; got != 1 {
		t.Fatalf("%d failed passes before the retry time, want 1", got)
	}
	h.mu.Lock()
	h.refuse = nil
	h.mu.Unlock()
	fake.Advance(retry - retry/2 + time.Millisecond)
	waitFor(t, "the retry once the fake clock passed its time", func() bool {
		fake.Advance(c.Interval) // the next tick, should the loop be mid-round
		return st.HintStats("n2").Count == 0
	})
	if got := d.Status().Failed; got != 1 {
		t.Fatalf("%d failed passes, want 1", got)
	}
}

// Accept refuses a hint for a target at its byte cap and marks the
// partition for repair.
func TestDriverAcceptCapsBytes(t *testing.T) {
	c := fastConfig()
	c.MaxBytesPerTarget = 1
	d, h, st := newDriver(t, c)
	k := h.r.KeyOf([]byte("k"))
	if err := d.Accept("n2", k); err != nil {
		t.Fatalf("first hint of an empty target: %v", err)
	}
	putHint(t, st, "n2", k, []byte("some bytes"))
	if err := d.Accept("n2", h.r.KeyOf([]byte("k2"))); !errors.Is(err, ErrFull) {
		t.Fatalf("Accept at the cap: %v, want ErrFull", err)
	}
	if _, marked := h.snapshot(); len(marked) != 1 {
		t.Fatalf("marked %v, want the refused hint's partition", marked)
	}
	if d.Status().Dropped["bytes"] != 1 {
		t.Fatalf("status %+v", d.Status())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []validtest.Case[Config]{
		{"default", func(*Config) {}, true},
		{"local", func(c *Config) { *c = DefaultLocalConfig() }, true},
		{"no interval", func(c *Config) { c.Interval = 0 }, false},
		{"no concurrency", func(c *Config) { c.Concurrency = 0 }, false},
		{"no rate cap", func(c *Config) { c.RatePerSecond, c.MinRatePerSecond = 0, 0 }, true},
		{"floor over the cap", func(c *Config) { c.MinRatePerSecond = c.RatePerSecond + 1 }, false},
		{"negative age cap", func(c *Config) { c.MaxAge = -1 }, false},
		{"backoff max below base", func(c *Config) { c.BackoffMax = c.BackoffBase / 2 }, false},
	}
	validtest.Table[Config]{Base: DefaultConfig, Same: validtest.Equal[Config], Cases: tests}.Run(t)
}
