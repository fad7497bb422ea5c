package ownership

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestCursorRoundTripAndResume(t *testing.T) {
	a, b := ID{Version: 3, Sum: 7}, ID{Version: 4, Sum: 1}
	c := Cursor{Target: a, Bytes: 1000, Keys: 10}
	for _, p := range []uint32{9, 2, 5, 2} {
		c.MarkDone(p)
	}
	if !slices.Equal(c.Done, []uint32{2, 5, 9}) || !c.Has(5) || c.Has(3) {
		t.Fatalf("done %v", c.Done)
	}
	got, err := DecodeCursor(c.Encode(), 16)
	if err != nil || got.Target != a || !slices.Equal(got.Done, c.Done) || got.Bytes != 1000 || got.Keys != 10 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Same target: what is still gained survives, with the byte count.
	r := got.Resume(a, []uint32{2, 3, 9})
	if !slices.Equal(r.Done, []uint32{2, 9}) || r.Bytes != 1000 || r.Target != a {
		t.Fatalf("resume same target: %+v", r)
	}
	// Another target starts over.
	if r := got.Resume(b, []uint32{2, 5, 9}); len(r.Done) != 0 || r.Bytes != 0 || r.Target != b {
		t.Fatalf("resume other target: %+v", r)
	}
}

func TestDecodeCursorRefusesBadInput(t *testing.T) {
	good := Cursor{Target: ID{Version: 1}, Done: []uint32{1, 2}}.Encode()
	for name, b := range map[string][]byte{
		"empty":        nil,
		"format":       append([]byte{9}, good[1:]...),
		"truncated":    good[:len(good)-2],
		"out of range": Cursor{Done: []uint32{1, 16}}.Encode(),
		"unsorted":     Cursor{Done: []uint32{3, 1}}.Encode(),
		"repeat":       Cursor{Done: []uint32{3, 3}}.Encode(),
		"too long":     Cursor{Done: make([]uint32, 100)}.Encode(),
	} {
		if _, err := DecodeCursor(b, 16); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// Any bytes decode to an error or a cursor whose partitions are in range
// and ascending; never a panic.
func TestPropDecodeCursor(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "b")
		if rapid.Bool().Draw(t, "format") && len(b) > 0 {
			b[0] = cursorFormat
		}
		c, err := DecodeCursor(b, 64)
		if err != nil {
			return
		}
		for i, p := range c.Done {
			if p >= 64 || i > 0 && p <= c.Done[i-1] {
				t.Fatalf("accepted %v", c.Done)
			}
		}
	})
}

func TestMeterAveragesWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var m Meter
	if m.Rate(t0) != 0 {
		t.Fatal("rate before any window")
	}
	// 1 MB per second, in 10 pieces a second, for 5 seconds.
	for i := range 50 {
		m.Add(t0.Add(time.Duration(i)*100*time.Millisecond), 100_000)
	}
	if r := m.Rate(t0.Add(5 * time.Second)); r < 0.99e6 || r > 1.01e6 {
		t.Fatalf("steady rate %v, want 1e6", r)
	}
	// Idle: the average decays toward 0 window by window, not at once.
	r1 := m.Rate(t0.Add(6 * time.Second))
	r2 := m.Rate(t0.Add(8 * time.Second))
	if !(r1 < 1e6 && r2 < r1 && r2 > 0) {
		t.Fatalf("decay %v then %v", r1, r2)
	}
	// A long gap forgets it.
	if r := m.Rate(t0.Add(10 * time.Minute)); r != 0 {
		t.Fatalf("after a long gap: %v", r)
	}
}

func TestLeftAndETA(t *testing.T) {
	if Left(0, 0, 10) != 0 || Left(100, 10, 0) != 0 {
		t.Fatal("left without a size or keys")
	}
	if got := Left(1000, 10, 5); got != 500 {
		t.Fatalf("left %d, want 500", got)
	}
	if _, ok := ETA(100, 0); ok {
		t.Fatal("an ETA at rate 0")
	}
	if d, ok := ETA(500, 100); !ok || d != 5*time.Second {
		t.Fatalf("eta %v %v", d, ok)
	}
	if d, ok := ETA(1<<62, 1e-9); !ok || d <= 0 {
		t.Fatalf("huge eta %v %v", d, ok)
	}
}

func TestThrottleValidate(t *testing.T) {
	if err := DefaultThrottle().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, th := range []Throttle{
		{BytesPerSecond: -1, Partitions: 1},
		{BytesPerSecond: 10, MinBytesPerSecond: 20, Partitions: 1},
		{BytesPerSecond: 10, Partitions: 0},
		{BytesPerSecond: 10, Partitions: 65},
	} {
		if th.Validate() == nil {
			t.Errorf("%+v accepted", th)
		}
	}
	if err := (Throttle{Partitions: 1}).Validate(); err != nil {
		t.Fatalf("no cap: %v", err)
	}
}
