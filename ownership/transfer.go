package ownership

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Cursor is a pending owner's place in its transfers toward one target,
// persisted so that a restart of the pending owner resumes where it was:
// the gained partitions it already holds whole are not pulled again. (A
// partition cut off midway, by a crash of either end, is pulled again by a
// Merkle exchange, which moves only the keys that still differ.)
type Cursor struct {
	Target ID `msgpack:"t"`
	// Done lists the gained partitions received whole, ascending.
	Done []uint32 `msgpack:"d"`
	// Bytes and Keys count what the transfers toward Target moved so far,
	// across restarts.
	Bytes uint64 `msgpack:"b"`
	Keys  uint64 `msgpack:"k"`
}

// cursorFormat is the first byte of an encoded Cursor.
const cursorFormat = 1

// Encode returns the cursor's stored form: a format byte, then msgpack.
func (c Cursor) Encode() []byte {
	var buf bytes.Buffer
	buf.WriteByte(cursorFormat)
	if err := msgpack.NewEncoder(&buf).Encode(&c); err != nil {
		return nil // a Cursor of plain fields always encodes
	}
	return buf.Bytes()
}

// DecodeCursor parses a stored cursor of a ring of q partitions: Done
// must be ascending, without repeats, and below q.
func DecodeCursor(b []byte, q int) (Cursor, error) {
	var c Cursor
	if len(b) == 0 || b[0] != cursorFormat {
		return c, errors.New("transfer cursor: unknown format")
	}
	if len(b) > 16+5*q+64 {
		return c, fmt.Errorf("transfer cursor: %d bytes for %d partitions", len(b), q)
	}
	if err := msgpack.Unmarshal(b[1:], &c); err != nil {
		return Cursor{}, fmt.Errorf("transfer cursor: %w", err)
	}
	for i, p := range c.Done {
		if int64(p) >= int64(q) || i > 0 && p <= c.Done[i-1] {
			return Cursor{}, fmt.Errorf("transfer cursor: partition %d out of order or range (q=%d)", p, q)
		}
	}
	return c, nil
}

// Resume returns the cursor to continue toward target: c's own when it
// is for target, keeping only the partitions still gained; a new one
// otherwise (the change it was for ended or was replaced).
func (c Cursor) Resume(target ID, gains []uint32) Cursor {
	if c.Target != target {
		return Cursor{Target: target}
	}
	out := Cursor{Target: target, Bytes: c.Bytes, Keys: c.Keys}
	for _, p := range c.Done {
		if _, ok := slices.BinarySearch(gains, p); ok {
			out.Done = append(out.Done, p)
		}
	}
	return out
}

// Has reports whether partition p is received whole.
func (c Cursor) Has(p uint32) bool {
	_, ok := slices.BinarySearch(c.Done, p)
	return ok
}

// MarkDone records partition p as received whole.
func (c *Cursor) MarkDone(p uint32) {
	if i, ok := slices.BinarySearch(c.Done, p); !ok {
		c.Done = slices.Insert(c.Done, i, p)
	}
}

// Meter estimates a transfer's rate in bytes per second: an exponentially
// weighted moving average of the rate over windows of MeterWindow, so
// that one slow or fast batch does not swing it. The zero Meter is ready;
// it is not safe for concurrent use.
type Meter struct {
	start  time.Time // of the current window
	bytes  float64   // moved in the current window
	rate   float64   // the average up to the last window
	filled bool      // rate holds at least one window
}

// MeterWindow is the span of one sample of a Meter's rate.
const MeterWindow = time.Second

// meterWeight is the weight of the newest window in the average.
const meterWeight = 0.3

// Add records n bytes moved at now.
func (m *Meter) Add(now time.Time, n int) {
	m.roll(now)
	m.bytes += float64(n)
}

// roll closes the windows that ended by now; idle windows count as 0.
func (m *Meter) roll(now time.Time) {
	if m.start.IsZero() {
		m.start = now
		return
	}
	for i := 0; now.Sub(m.start) >= MeterWindow; i++ {
		r := m.bytes / MeterWindow.Seconds()
		if !m.filled {
			m.rate, m.filled = r, true
		} else {
			m.rate += meterWeight * (r - m.rate)
		}
		m.bytes = 0
		m.start = m.start.Add(MeterWindow)
		if i == 60 { // a long gap: the average decayed to nothing
			m.rate, m.start = 0, now
			break
		}
	}
}

// Rate returns the average rate in bytes per second at now (0 before the
// first window ends).
func (m *Meter) Rate(now time.Time) float64 {
	m.roll(now)
	return m.rate
}

// Left estimates the bytes still to move for keysLeft keys when doneBytes
// moved doneKeys so far (the average size so far; 0 when nothing moved
// yet, as nothing tells the size).
func Left(doneBytes, doneKeys uint64, keysLeft int) uint64 {
	if doneKeys == 0 || keysLeft <= 0 {
		return 0
	}
	return uint64(math.Round(float64(doneBytes) / float64(doneKeys) * float64(keysLeft)))
}

// ETA is how long left bytes take at rate bytes per second; ok is false
// when the rate tells nothing (0).
func ETA(left uint64, rate float64) (d time.Duration, ok bool) {
	if rate <= 0 || math.IsNaN(rate) {
		return 0, false
	}
	if left == 0 {
		return 0, true
	}
	s := float64(left) / rate
	if s > float64(math.MaxInt64/int64(time.Second)) {
		s = float64(math.MaxInt64 / int64(time.Second))
	}
	return time.Duration(s * float64(time.Second)), true
}

// Throttle describes how fast a node's transfers may move: at most
// BytesPerSecond (0: no cap), adapting down to MinBytesPerSecond when the
// batches slow down (internal/pace, as hint delivery does, so that the
// clients' latency is protected), and Partitions pulled at once.
type Throttle struct {
	BytesPerSecond    int
	MinBytesPerSecond int
	Partitions        int
}

// DefaultThrottle is a node's transfer throttle unless configured: 32
// MiB/s at most, adapting down to 2 MiB/s, two partitions at once.
func DefaultThrottle() Throttle {
	return Throttle{BytesPerSecond: 32 << 20, MinBytesPerSecond: 2 << 20, Partitions: 2}
}

// Validate reports the first problem with t.
func (t Throttle) Validate() error {
	switch {
	case t.BytesPerSecond < 0 || t.MinBytesPerSecond < 0:
		return fmt.Errorf("transfer rate %d, min %d: cannot be negative", t.BytesPerSecond, t.MinBytesPerSecond)
	case t.BytesPerSecond > 0 && t.MinBytesPerSecond > t.BytesPerSecond:
		return fmt.Errorf("transfer min rate %d exceeds the rate %d", t.MinBytesPerSecond, t.BytesPerSecond)
	case t.Partitions < 1 || t.Partitions > 64:
		return fmt.Errorf("transfer partitions %d: want 1 to 64", t.Partitions)
	}
	return nil
}
