package transport

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors returned by Call, Listen and Close. They arrive wrapped with
// context; test them with errors.Is. The end of a call's ctx is reported as
// an error matching ctx.Err() (context.DeadlineExceeded or
// context.Canceled), and a handler's error as a *RemoteError.
var (
	// ErrClosed means the local transport was closed before or during the
	// call.
	ErrClosed = errors.New("transport: closed")
	// ErrUnreachable means no connection to the peer could be used: the
	// dial was refused or timed out, the handshake failed (then ErrAuth,
	// ErrVersion or ErrProtocol matches too), the peer is in
	// reconnect backoff (calls then fail at once instead of piling up
	// dials), or the connection broke (then ErrConnLost matches too). When
	// ErrConnLost does not match, the request was not sent.
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrConnLost means the connection broke while the call was in flight,
	// so the handler may or may not have run. Errors matching it also match
	// ErrUnreachable.
	ErrConnLost = errors.New("transport: connection lost")
	// ErrFrameTooLarge means a request or reply body does not fit in the
	// smaller of the two nodes' MaxFrame. The sender checks before sending,
	// so nothing went on the wire. A peer that sends an oversize frame
	// anyway has its connection closed.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrAuth means the handshake failed because one side could not prove
	// it holds the cluster secret. It comes wrapped in ErrUnreachable.
	ErrAuth = errors.New("transport: authentication failed")
	// ErrVersion means the peer speaks a protocol version this node does
	// not accept; the error is a *VersionError (find it with errors.As),
	// wrapped in ErrUnreachable.
	ErrVersion = errors.New("transport: protocol version mismatch")
	// ErrProtocol means a peer sent bytes that break the wire format (bad
	// magic, kind or length), or a record that fails authentication
	// (altered, replayed, reordered or dropped on the way). The connection
	// is closed.
	ErrProtocol = errors.New("transport: protocol violation")
	// ErrBusy means the peer had no room in its memory budget
	// (Config.Budget) for the request within the budget's wait: the
	// request was skipped unread and its handler never ran. Retry later or
	// elsewhere.
	ErrBusy = errors.New("transport: peer busy: no room in its memory budget")
	// ErrInvalidMethod means Call was given Method 0.
	ErrInvalidMethod = errors.New("transport: invalid method 0")
)

// unreachableError reports that a peer could not be used. It matches
// ErrUnreachable and, through cause, ErrAuth, ErrVersion or ErrProtocol
// (and As finds a *VersionError); the cause's
// net errors are kept in the message only, so that a dial timeout is never
// mistaken for the caller's own deadline.
type unreachableError struct {
	addr  string
	cause error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrUnreachable, e.addr, e.cause)
}

func (e *unreachableError) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return true
	case ErrAuth, ErrProtocol, ErrClosed, ErrVersion:
		return errors.Is(e.cause, target)
	}
	return false
}

// As finds a *VersionError in the cause (and nothing else, for the reason
// above).
func (e *unreachableError) As(target any) bool {
	if p, ok := target.(**VersionError); ok {
		return errors.As(e.cause, p)
	}
	return false
}

// VersionError is a handshake refused because the two sides speak
// different protocol versions (see the package doc). The dialing side gets
// it wrapped in ErrUnreachable; the accepting side logs it.
type VersionError struct {
	Addr  string // the peer's address, when known
	Local uint8  // the newest version this node speaks
	Peer  uint8  // the version the peer announced or offered
}

func (e *VersionError) Error() string {
	peer := "peer"
	if e.Addr != "" {
		peer += " " + e.Addr
	}
	msg := fmt.Sprintf("transport: %s speaks protocol version %d, this node version %d", peer, e.Peer, e.Local)
	switch {
	case e.Local == versionSealed && e.Peer == versionPlain:
		msg += " (version 1 sends frames unencrypted: a node with a cluster secret refuses it; the peer runs an older release, or the cluster secret is set on one side only;" +
			" during a rolling upgrade from the release before encryption, the accept-v1-peers setting lets this node speak version 1 to it)"
	case e.Peer > e.Local:
		msg += " (the peer runs a newer release that no longer speaks this one's version)"
	default:
		msg += " (the peer runs an older release)"
	}
	return msg
}

// Is makes a *VersionError match ErrVersion.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

// connLostError reports a call cut short by a broken connection. It matches
// ErrConnLost and ErrUnreachable but not its cause: a connection closed
// because the peer sent an oversize frame must not make every call pending
// on it look like ErrFrameTooLarge.
type connLostError struct {
	addr  string
	cause error
}

func (e *connLostError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrConnLost, e.addr, e.cause)
}

func (e *connLostError) Is(target error) bool {
	return target == ErrConnLost || target == ErrUnreachable
}

// listenError reports a failed bind. It names the common cause plainly
// ("address already in use") instead of burying it in the net.OpError's
// text, and unwraps to that error, so errors.Is(err, syscall.EADDRINUSE)
// holds.
type listenError struct {
	addr string
	err  error
}

func (e *listenError) Error() string {
	if errors.Is(e.err, syscall.EADDRINUSE) {
		return fmt.Sprintf("transport: listen on %s: address already in use", e.addr)
	}
	return fmt.Sprintf("transport: listen on %s: %v", e.addr, e.err)
}

func (e *listenError) Unwrap() error { return e.err }
