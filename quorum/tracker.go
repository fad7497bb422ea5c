package quorum

import (
	"math/bits"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Decision is a tracker's verdict on a request. The zero value is invalid, so
// an unset Decision is never mistaken for a verdict.
type Decision int

// Decisions. Once a tracker reaches Succeeded or Failed it stays there; later
// replies are still counted (they show in Acks) but do not change the verdict.
const (
	Pending Decision = iota + 1
	Succeeded
	Failed
)

func (d Decision) String() string {
	switch d {
	case Pending:
		return "pending"
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	}
	return "invalid"
}

// Acks counts the replicas that answered successfully. Durable counts the
// write acks that were fsynced; it is always zero for reads. Zones counts
// the distinct zones of a write's acks when its tracker was given them
// (RecordZone); 0 means not counted.
type Acks struct {
	Primary, Fallback, Durable int
	Zones                      int
}

// Total is the number of successful answers.
func (a Acks) Total() int { return a.Primary + a.Fallback }

// WriteTracker counts write acknowledgements against W, PW and DW. It is pure
// and not safe for concurrent use: the coordinator feeds it from one goroutine.
type WriteTracker struct {
	w, pw, dw, pz      int
	zones              uint64 // zones acked (RecordZone): bit zone%64
	outstanding        int    // requests sent and not yet answered
	outstandingPrimary int
	acks               Acks
	errs               []error
	decision           Decision
}

// NewWriteTracker returns a tracker needing w acks, pw of them from primaries
// and dw of them durable.
func NewWriteTracker(w, pw, dw int) *WriteTracker {
	return &WriteTracker{w: w, pw: pw, dw: dw, decision: Pending}
}

// RequireZones makes the tracker also need acks from pz distinct zones
// (Params.PZ); their zones come through RecordZone.
func (t *WriteTracker) RequireZones(pz int) { t.pz = pz }

// RecordZone is Record for a replica in zone number zone
// (ring.Ring.ZoneIndex): a success counts the zone toward RequireZones and
// Acks.Zones; a negative zone is not counted. Zones are counted modulo 64,
// so that counting allocates nothing; with more than 64 zones two of them
// may count as one, which can only undercount (a write never claims zones
// it did not reach).
func (t *WriteTracker) RecordZone(zone int, primary, durable bool, err error) Decision {
	if err == nil && zone >= 0 {
		t.zones |= 1 << (uint(zone) % 64)
		t.acks.Zones = bits.OnesCount64(t.zones)
	}
	return t.Record(primary, durable, err)
}

// Add records that a request was sent to one more replica. Call it before
// Record for the replica it replaces, so a failure followed by a fallback
// does not fail the write early.
func (t *WriteTracker) Add(primary bool) {
	t.outstanding++
	if primary {
		t.outstandingPrimary++
	}
}

// Record counts one replica's answer and returns the decision.
func (t *WriteTracker) Record(primary, durable bool, err error) Decision {
	t.outstanding--
	if primary {
		t.outstandingPrimary--
	}
	if err != nil {
		t.errs = append(t.errs, err)
	} else {
		if primary {
			t.acks.Primary++
		} else {
			t.acks.Fallback++
		}
		if durable {
			t.acks.Durable++
		}
	}
	if t.decision == Pending {
		t.decision = t.decide()
	}
	return t.decision
}

func (t *WriteTracker) decide() Decision {
	a := t.acks
	if a.Total() >= t.w && a.Primary >= t.pw && a.Durable >= t.dw && t.acks.Zones >= t.pz {
		return Succeeded
	}
	// Each outstanding reply can add at most one zone.
	if a.Total()+t.outstanding < t.w ||
		a.Primary+t.outstandingPrimary < t.pw ||
		a.Durable+t.outstanding < t.dw ||
		t.acks.Zones+t.outstanding < t.pz {
		return Failed
	}
	return Pending
}

// Decision returns the current verdict.
func (t *WriteTracker) Decision() Decision { return t.decision }

// Acks returns the answers counted so far.
func (t *WriteTracker) Acks() Acks { return t.acks }

// Outstanding returns how many replicas have not answered yet.
func (t *WriteTracker) Outstanding() int { return t.outstanding }

// Err builds the error for a failed write.
func (t *WriteTracker) Err(op string) *QuorumError {
	return &QuorumError{
		Op: op, Required: t.w, Acks: t.acks.Total(),
		RequiredPrimary: t.pw, PrimaryAcks: t.acks.Primary,
		RequiredDurable: t.dw, DurableAcks: t.acks.Durable,
		RequiredZones: t.pz, ZoneAcks: t.acks.Zones,
		FallbackAcks: t.acks.Fallback,
		Targets:      t.acks.Total() + len(t.errs) + t.outstanding,
		Errs:         append([]error(nil), t.errs...),
	}
}

// ReadTracker counts read answers against R and PR. Not-found answers are
// answers. Pure and not safe for concurrent use.
type ReadTracker struct {
	r, pr              int
	outstanding        int
	outstandingPrimary int
	acks               Acks
	errs               []error
	decision           Decision
}

// NewReadTracker returns a tracker needing r answers, pr of them from primaries.
func NewReadTracker(r, pr int) *ReadTracker {
	return &ReadTracker{r: r, pr: pr, decision: Pending}
}

// Add records that a request was sent to one more replica.
func (t *ReadTracker) Add(primary bool) {
	t.outstanding++
	if primary {
		t.outstandingPrimary++
	}
}

// Record counts one replica's answer and returns the decision.
func (t *ReadTracker) Record(primary bool, err error) Decision {
	t.outstanding--
	if primary {
		t.outstandingPrimary--
	}
	if err != nil {
		t.errs = append(t.errs, err)
	} else if primary {
		t.acks.Primary++
	} else {
		t.acks.Fallback++
	}
	if t.decision == Pending {
		a := t.acks
		switch {
		case a.Total() >= t.r && a.Primary >= t.pr:
			t.decision = Succeeded
		case a.Total()+t.outstanding < t.r || a.Primary+t.outstandingPrimary < t.pr:
			t.decision = Failed
		}
	}
	return t.decision
}

// Decision returns the current verdict.
func (t *ReadTracker) Decision() Decision { return t.decision }

// Acks returns the answers counted so far.
func (t *ReadTracker) Acks() Acks { return t.acks }

// Err builds the error for a failed read.
func (t *ReadTracker) Err() *QuorumError {
	return &QuorumError{
		Op: "get", Required: t.r, Acks: t.acks.Total(),
		RequiredPrimary: t.pr, PrimaryAcks: t.acks.Primary,
		FallbackAcks: t.acks.Fallback,
		Targets:      t.acks.Total() + len(t.errs) + t.outstanding,
		Errs:         append([]error(nil), t.errs...),
	}
}

// Reply is one replica's answer to a read, as RepairTargets sees it.
type Reply struct {
	Target ring.Target
	Set    vclock.Set
}

// RepairTargets returns the primaries among replies whose set differs from
// merged, the sync of everything read: those are behind and get the merged set
// (read repair). Fallbacks are not repaired: they hold hints, not replicas, and
// hinted handoff and anti-entropy bring the primaries they stand for up to date.
func RepairTargets(merged vclock.Set, replies []Reply) []ring.Target {
	var out []ring.Target
	for _, r := range replies {
		if r.Target.HintFor != "" {
			continue
		}
		if !r.Set.Equal(merged) {
			out = append(out, r.Target)
		}
	}
	return out
}
