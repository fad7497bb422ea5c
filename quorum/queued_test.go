package quorum

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// queuedMint adds QueuedMinter to a fakeReplicas: the mint is applied at
// once, and its commit takes delay and returns err, like a store whose
// group commit (and fsync) is still to come.
type queuedMint struct {
	*fakeReplicas
	delay time.Duration
	err   error
	// commits counts the calls of commit functions handed out.
	commits *int
}

var _ QueuedMinter = queuedMint{}

func (q queuedMint) MintQueued(ctx context.Context, t ring.Target, k key, vctx vclock.Vector, v vclock.Value, durable, supersede bool) (Minted, func() error, error) {
	method := "mint"
	if supersede {
		method = "supersede"
	}
	m, err := q.mint(ctx, method, t, vctx, v, durable)
	if err != nil {
		return m, nil, err
	}
	return m, func() error {
		*q.commits++
		time.Sleep(q.delay)
		return q.err
	}, nil
}

var errCommit = errors.New("group commit failed")

// With a QueuedMinter the coordinator sends the minted set to the other
// replicas before its own copy committed, so a write at W=3 waits for the
// slower of the two, not for their sum; a failed local commit is a failed
// ack of this node: the write fails at W=3 and needs both others at W=2.
func TestPutOverlapsLocalCommitWithReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var commits int
		tc := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 3}, func(f *fakeReplicas) Replicas {
			return queuedMint{f, 30 * time.Millisecond, nil, &commits}
		})
		tc.reps.set(tc.pref[1], behaviour{delay: 20 * time.Millisecond})
		tc.reps.set(tc.pref[2], behaviour{delay: 20 * time.Millisecond})
		start := time.Now()
		res, err := tc.put(t, "v", Params{})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 30*time.Millisecond {
			t.Errorf("answered after %s, want 30ms (commit and merges overlapped)", d)
		}
		if res.Acks != (Acks{Primary: 3}) || commits != 1 {
			t.Errorf("acks %+v and %d commits, want 3 primary acks and 1 commit", res.Acks, commits)
		}
		for _, m := range tc.reps.recorded("merge") {
			if !m.start.Equal(start) {
				t.Errorf("merge to %s started after %s, want at once", m.target.Node, m.start.Sub(start))
			}
		}
	})
	synctest.Test(t, func(t *testing.T) {
		var commits int
		tc := newTestCoord(t, 3, 0, Params{N: 3, R: 2, W: 3}, func(f *fakeReplicas) Replicas {
			return queuedMint{f, 5 * time.Millisecond, errCommit, &commits}
		})
		if _, err := tc.put(t, "v", Params{}); !errors.Is(err, errCommit) {
			t.Fatalf("put at W=3 with a failed local commit: %v, want the commit's error", err)
		}
		res, err := tc.put(t, "v", Params{W: 2})
		if err != nil {
			t.Fatalf("put at W=2 with a failed local commit and two replicas up: %v", err)
		}
		if res.Acks != (Acks{Primary: 2}) || commits != 2 {
			t.Errorf("acks %+v and %d commits, want the two other replicas' acks only and 2 commits", res.Acks, commits)
		}
		tc.Wait()
	})
}
