package quorum

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// asyncFakes, when set, makes newTestCoord's coordinators use
// asyncReplicas (counting the calls started there) instead of plain
// fakeReplicas. Set only by TestCoordinatorOverAsyncReplicas, which runs
// its tests one after the other.
var asyncFakes *atomic.Int64

// asyncReplicas is fakeReplicas as an AsyncReplicas: each call answers
// through done from a goroutine of the fake's, as the transport's reader
// would, possibly after the coordinator stopped waiting.
type asyncReplicas struct {
	*fakeReplicas
	started *atomic.Int64
}

var _ AsyncReplicas = asyncReplicas{}

func (a asyncReplicas) MergeAsync(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, done func(bool, error)) {
	a.started.Add(1)
	go func() { done(a.Merge(ctx, t, k, set, durable)) }()
}

func (a asyncReplicas) ReadAsync(ctx context.Context, t ring.Target, k ring.Key, done func(vclock.Set, error)) {
	a.started.Add(1)
	go func() { done(a.Read(ctx, t, k)) }()
}

// The coordinator's tests again with replica calls that answer through a
// callback (AsyncReplicas, as node's over TCP) rather than in a goroutine
// of the coordinator's: the same answers, late acks, fallbacks, hints,
// read repair and Close.
func TestCoordinatorOverAsyncReplicas(t *testing.T) {
	var started atomic.Int64
	asyncFakes = &started
	defer func() { asyncFakes = nil }()
	for name, test := range map[string]func(*testing.T){
		"AnswersAtWAcks":       TestPutAnswersAtWAcksWhileLateAcksLand,
		"Fallback":             TestPutFailedTargetReplacedByFallback,
		"StrictQuorum":         TestPutStrictQuorumFailsWhenPrimariesCannotAck,
		"HintOfLastResort":     TestPutHintOfLastResort,
		"DurableAcks":          TestPutDurableAcks,
		"TimeoutCounts":        TestPutTimeoutReportsCounts,
		"ReadRepair":           TestGetReadRepair,
		"GetQuorumErrors":      TestGetQuorumErrors,
		"CloseWaits":           TestCloseWaitsForBackgroundCalls,
		"TimeoutDeadlineRaces": TestTimeoutAnswerDoesNotRaceCallDeadlines,
	} {
		before := started.Load()
		t.Run(name, test)
		if started.Load() == before {
			t.Errorf("%s started no call through MergeAsync or ReadAsync", name)
		}
	}
}
