package quorum

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// The coordinator stamps the deadline from its clock, before any forward,
// so every replica holds the same one; a read past it answers the value's
// tombstone, under the same context.
func TestPutStampsDeadlineAndGetExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
		defer tc.Close()
		start := time.Now()
		res, err := tc.Put(t.Context(), PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v")}, TTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		tc.Wait()
		want := start.Add(2 * time.Second).UnixNano()
		for _, id := range tc.pref {
			if v, ok := tc.reps.setOf(id).Find(res.Dot); !ok || v.Expires != want {
				t.Fatalf("%s holds %+v, want the deadline %d", id, v, want)
			}
		}
		if len(res.Set.Live()) != 1 {
			t.Fatalf("the write's answer: %+v", res.Set)
		}
		get := func() vclock.Set {
			t.Helper()
			r, err := tc.Get(t.Context(), GetRequest{Key: []byte("k")})
			if err != nil {
				t.Fatal(err)
			}
			return r.Set
		}
		time.Sleep(2*time.Second - time.Nanosecond)
		if s := get(); len(s.Live()) != 1 {
			t.Fatalf("just before the deadline: %+v", s)
		}
		time.Sleep(time.Nanosecond)
		s := get()
		if !s.IsDeleted() || !s.Context.Covers(res.Dot) || s.Siblings[0].Dot != res.Dot {
			t.Fatalf("at the deadline: %+v, want the value's tombstone", s)
		}
		tc.Wait()
	})
}

func TestPutRefusesBadDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  PutRequest
	}{
		{"negative ttl", PutRequest{TTL: -time.Second}},
		{"past 2262", PutRequest{TTL: time.Duration(math.MaxInt64)}},
		{"before 1970", PutRequest{Value: vclock.Value{Expires: -1}}},
		{"delete with a deadline", PutRequest{Value: vclock.Value{Deleted: true}, TTL: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 2}, nil)
			tc.req.Key = []byte("k")
			if _, err := c.Put(context.Background(), tc.req); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if n := len(c.reps.recorded("mint", "merge", "forward")); n != 0 {
				t.Fatalf("%d replica calls for a refused write", n)
			}
		})
	}
}

// A node that is not a replica forwards the absolute deadline it stamped.
func TestForwardCarriesTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCoord(t, 5, 4, Params{N: 3, R: 2, W: 2}, nil)
		var got PutRequest
		c.reps.forward = func(node ring.NodeID, req PutRequest) (*WriteResult, error) {
			got = req
			return &WriteResult{Acks: Acks{Primary: 2}, Coordinator: node}, nil
		}
		if _, err := c.Put(t.Context(), PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v")}, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if got.TTL != 0 || got.Value.Expires != time.Now().Add(time.Minute).UnixNano() {
			t.Fatalf("forwarded %+v", got)
		}
	})
}
