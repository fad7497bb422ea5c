package membudget

import (
	"errors"
	"fmt"
	"time"
)

// Errors of Take and Acquire; the returned errors are a *BusyError or a
// *TooLargeError, which match these with errors.Is.
var (
	// ErrBusy: the budget stayed full for Config.MaxWait (or until the
	// caller's context ended first). The request may succeed later: HTTP
	// 503 with Retry-After, RESP -BUSY.
	ErrBusy = errors.New("membudget: busy")
	// ErrTooLarge: the request is larger than the whole budget and can
	// never fit: HTTP 413, RESP -TOOLARGE.
	ErrTooLarge = errors.New("membudget: larger than the whole budget")
)

// BusyError refuses a request that found no room in time.
type BusyError struct {
	// Need is the bytes asked for; InUse and Limit describe the budget
	// when the wait ended (of the parent, when the parent refused).
	Need, InUse, Limit int64
	// Waited is how long the request waited.
	Waited time.Duration
	// RetryAfter is the suggested wait before retrying: the budget's
	// RetryAfter, longer when more bytes were queued than the budget holds.
	RetryAfter time.Duration
	// Cause is the caller's context error when the context ended the
	// wait before MaxWait did; nil otherwise.
	Cause error
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("busy: %d bytes of requests in flight fill the node's budget of %d (this one needs %d; waited %v); retry after %v",
		e.InUse, e.Limit, e.Need, e.Waited.Round(time.Millisecond), e.RetryAfter)
}

// Is matches ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Unwrap returns Cause, so errors.Is(err, context.Canceled) tells a client
// that went away from a full budget.
func (e *BusyError) Unwrap() error { return e.Cause }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1:
// the value of an HTTP Retry-After header.
func (e *BusyError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// TooLargeError refuses a request larger than the whole budget.
type TooLargeError struct {
	Need, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("request of %d bytes is larger than the node's whole budget of %d bytes for requests in flight", e.Need, e.Limit)
}

// Is matches ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }
