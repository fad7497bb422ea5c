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
	// dial was refused or timed out, the handshake failed, the peer is in
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
	// ErrProtocol means a peer sent bytes that break the wire format (bad
	// magic, version, kind or length). The connection is closed.
	ErrProtocol = errors.New("transport: protocol violation")
	// ErrInvalidMethod means Call was given Method 0.
	ErrInvalidMethod = errors.New("transport: invalid method 0")
)

// unreachableError reports that a peer could not be used. It matches
// ErrUnreachable and, through cause, ErrAuth or ErrProtocol; the cause's
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
	case ErrAuth, ErrProtocol, ErrClosed:
		return errors.Is(e.cause, target)
	}
	return false
}

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
