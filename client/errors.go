package client

import (
	"errors"
	"fmt"
	"github.com/quorumkv/quorumkv/api"
	"net/http"
	"strings"
)

// Sentinel errors. Match them with errors.Is: every error the server
// answered is an *Error, whose Is method maps its status and code onto them;
// errors detected before sending (an empty key, an option that does not
// apply) wrap ErrBadRequest.
var (
	// ErrNotFound means the key has no live value: never written, or every
	// sibling deleted. Get returns it together with an Object whose Context
	// is still set (write with it to supersede the tombstones).
	ErrNotFound = errors.New("not found")
	// ErrQuorum means too few replicas answered before the deadline (503
	// with code quorum_not_met). Dynamo semantics: a write that failed this
	// way may still have been stored on some replicas and become visible.
	ErrQuorum = errors.New("quorum not met")
	// ErrUnavailable means the cluster could not serve the request now: any
	// 503 (quorum not met, no live coordinator, node shutting down). Every
	// error matching ErrQuorum matches ErrUnavailable too.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadRequest means the request itself was refused: a 4xx other than
	// a key's 404 (bad parameter, value or key too large, malformed context,
	// unknown path, wrong method), or an invalid request option.
	ErrBadRequest = errors.New("bad request")
	// ErrNoAnswer means a node was skipped, with WithFailover, because it
	// did not answer its health check in time or was not healthy.
	ErrNoAnswer = errors.New("node did not answer")
	// ErrExists means a Put with CreateOnly was refused: the read it made
	// first found a live value (412, code exists). It is not a
	// bad request.
	ErrExists = errors.New("key exists")
)

// Error is an error answer from a node. The count fields are set on quorum
// failures only (Code "quorum_not_met"); a zero means the node did not send
// that count.
type Error struct {
	Status int    // HTTP status code
	Code   string // machine-readable code, e.g. "bad_parameter", "quorum_not_met"
	Msg    string // the node's human-readable message
	Param  string // the offending parameter, for "bad_parameter"
	Addr   string // the node that answered

	Acks, Required               int // answers received in time, and R or W
	PrimaryAcks, RequiredPrimary int // answers from primaries, and PR or PW
	DurableAcks, RequiredDurable int // durable write acks, and DW
	FallbackAcks                 int // answers from fallbacks
	Targets                      int // replicas the coordinator asked
}

// Error returns the status, the code and the node's message.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Code)
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Is maps the answer onto the package's sentinels (see their docs).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound && e.Code == codeNotFound
	case ErrQuorum:
		return e.Code == codeQuorum
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable || e.Code == codeQuorum
	case ErrExists:
		return e.Status == http.StatusPreconditionFailed && e.Code == api.CodeExists
	case ErrBadRequest:
		return e.Status >= 400 && e.Status < 500 && e.Status != statusCanceled &&
			!(e.Status == http.StatusNotFound && e.Code == codeNotFound) &&
			!(e.Status == http.StatusPreconditionFailed && e.Code == api.CodeExists)
	}
	return false
}

// Error codes the client interprets; the node sends others too (Code keeps
// whatever it sent).
const (
	codeNotFound = api.CodeNotFound
	codeQuorum   = api.CodeQuorumNotMet
	// statusCanceled is the node's answer to a request its client abandoned.
	statusCanceled = 499
)

// badRequest is an error detected before sending.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrBadRequest)
}
