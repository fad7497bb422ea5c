package quorum

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; QuorumError and ParamError match
// ErrQuorumNotMet and ErrInvalid respectively.
var (
	// ErrQuorumNotMet means too few replicas answered before the deadline.
	ErrQuorumNotMet = errors.New("quorum not met")
	// ErrInvalid means the request's parameters or key are invalid.
	ErrInvalid = errors.New("invalid request")
	// ErrNoCoordinator means no live replica could coordinate a write.
	ErrNoCoordinator = errors.New("no live replica can coordinate")
	// ErrClosed means the coordinator is shutting down.
	ErrClosed = errors.New("coordinator closed")
	// ErrNotJoined refuses a request that names no N while the node has
	// not joined its cluster yet (it has seeds, none answered, and its
	// ring is only itself): serving it with N fitted to that ring would
	// acknowledge writes the cluster never sees.
	ErrNotJoined = errors.New("this node has not joined its cluster yet (no seed answered); it serves requests that give no n once it has")
)

// ParamError reports an invalid request parameter.
type ParamError struct {
	Param string // "n", "r", "w", "pr", "pw", "dw", "pz", "timeout" or "key"
	Msg   string
}

func (e *ParamError) Error() string        { return e.Msg }
func (e *ParamError) Is(target error) bool { return target == ErrInvalid }

// QuorumError reports a quorum that was not met, with the counts a client
// needs to understand why. Unwrap returns the replica errors.
type QuorumError struct {
	Op       string // "get", "put" or "delete"
	Required int    // R or W
	Acks     int    // answers received in time
	// RequiredPrimary and PrimaryAcks are PR/PW and the primaries' answers.
	RequiredPrimary, PrimaryAcks int
	// RequiredDurable and DurableAcks are DW and the durable answers.
	RequiredDurable, DurableAcks int
	// RequiredZones and ZoneAcks are PZ and the distinct zones of the
	// acknowledgements (writes only).
	RequiredZones, ZoneAcks int
	FallbackAcks            int
	Targets                 int // replicas asked
	Errs                    []error
}

func (e *QuorumError) Error() string {
	msg := fmt.Sprintf("%s: quorum not met: %d of %d required acks", e.Op, e.Acks, e.Required)
	if e.RequiredPrimary > 0 {
		msg += fmt.Sprintf(", %d of %d required primary acks", e.PrimaryAcks, e.RequiredPrimary)
	}
	if e.RequiredDurable > 0 {
		msg += fmt.Sprintf(", %d of %d required durable acks", e.DurableAcks, e.RequiredDurable)
	}
	if e.RequiredZones > 0 {
		msg += fmt.Sprintf(", %d of %d required zones", e.ZoneAcks, e.RequiredZones)
	}
	msg += fmt.Sprintf(" (%d replica(s) reachable)", e.Targets)
	if len(e.Errs) > 0 {
		msg += ": " + e.Errs[0].Error()
		if len(e.Errs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(e.Errs)-1)
		}
	}
	return msg
}

// Is makes errors.Is(err, ErrQuorumNotMet) true.
func (e *QuorumError) Is(target error) bool { return target == ErrQuorumNotMet }

// Unwrap returns the errors of the replicas that failed.
func (e *QuorumError) Unwrap() []error { return e.Errs }
