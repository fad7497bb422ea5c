package oracle

import (
	"testing"
	"time"
)

// FuzzParseTag: any bytes parse without panic; a tag that parses is
// rewritten to the same bytes.
func FuzzParseTag(f *testing.F) {
	f.Add(appendTag(nil, 1, keyHash("k"), 1))
	f.Add(appendTag(nil, 0xffffffff, 0xffffffff, maxTagID))
	f.Add([]byte("qo1:"))
	f.Add([]byte("qo1:0000000g0000000000000000000001"))
	f.Add([]byte("QO1:00000001000000010000000000000001"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		run, kh, id, ok := ParseTag(b)
		if !ok {
			return
		}
		if got := appendTag(nil, run, kh, id); string(got) != string(b[:TagLen]) {
			t.Fatalf("ParseTag(%q) = %x %x %d, which writes %q", b, run, kh, id, got)
		}
	})
}

// FuzzOracleValues: whatever bytes a store answers with, the oracle never
// panics, counts each value once as this run's, foreign or unexpected, and
// never calls a foreign value lost or resurrected.
func FuzzOracleValues(f *testing.F) {
	o0, _ := New(Config{Run: 3})
	tag := o0.AppendTag(nil, o0.Invoke(Write{Key: "k"}))
	f.Add(tag, []byte("x"), []byte{}, uint8(3))
	f.Add([]byte("qo1:00000003"), tag, append(tag, tag...), uint8(0))
	f.Fuzz(func(t *testing.T, a, b, c []byte, ops uint8) {
		o, _ := New(Config{Run: 3, History: 2})
		var ctx Context
		for i := range int(ops % 8) {
			op := o.Invoke(Write{Key: "k", Context: ctx, Invoke: time.Duration(i)})
			o.Complete(op, Outcome(1+i%3), time.Duration(i))
			ctx, _ = o.Read(Read{Key: "k", Values: [][]byte{a, b, c}, Invoke: time.Duration(i)})
		}
		o.Observe("other", [][]byte{a, b})
		o.Final("k", [][]byte{a, b, c})
		r := o.Result()
		if r.Foreign < 0 || r.Unexpected < 0 || r.Lost > r.Acked || r.Resurrected > r.Writes {
			t.Fatalf("inconsistent result %+v", r)
		}
	})
}
