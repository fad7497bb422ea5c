package transport

import (
	"context"
	"slices"
	"strconv"
)

// Method names the operation a request asks for. Callers choose the numbers;
// the transport only carries them. 0 is invalid, so a zero value is never
// mistaken for a real method.
type Method uint8

// Handler serves requests that arrive from other nodes.
type Handler interface {
	// ServeRPC handles one request and returns the reply body.
	//
	// from is the caller's node id. Over TCP it is the id the peer sent in
	// the handshake, which the cluster secret vouches for: the secret proves
	// membership of the cluster, not which member is speaking.
	//
	// body is valid only until ServeRPC returns: the TCP transport reuses the
	// buffer for later frames, so copy what must outlive the call. The
	// returned slice is not retained after it has been written, and it may
	// alias body.
	//
	// Returning an error sends it to the caller as a *RemoteError: a
	// *RemoteError (found with errors.As) keeps its Code, any other error
	// becomes Code 0 with err.Error() as Msg. A panic is recovered, logged
	// with its stack, and answered as RemoteError{Msg: "transport: handler
	// panicked"}; the process and the connection carry on.
	//
	// Calls run concurrently, each in its own goroutine. TCP bounds them per
	// connection by Config.MaxInflight: beyond it the transport stops
	// reading that connection until a handler returns, which pushes back on
	// the sender through TCP flow control. ctx ends when the caller's
	// deadline (carried in the request) passes, when the connection breaks,
	// or when the transport is closed. Over TCP, requests read together
	// under the same budget may share one ctx (its deadline never later
	// than each one's own), which then ends only after all their handlers
	// have returned: do not count on ctx being cancelled when ServeRPC
	// returns.
	ServeRPC(ctx context.Context, from string, m Method, body []byte) ([]byte, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, from string, m Method, body []byte) ([]byte, error)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, from string, m Method, body []byte) ([]byte, error) {
	return f(ctx, from, m, body)
}

// Transport sends requests to other nodes. Implementations are safe for
// concurrent use.
type Transport interface {
	// Call sends body to the node listening at addr and waits for its reply
	// or for ctx to end. body is not retained after Call returns. The
	// returned slice is owned by the caller (it may be nil when the reply is
	// empty). A handler error arrives as a *RemoteError; ctx's end as an
	// error matching ctx.Err(); see the package errors for the rest.
	Call(ctx context.Context, addr string, m Method, body []byte) ([]byte, error)
	// LocalAddr is the address other nodes pass to Call to reach this one.
	LocalAddr() string
	// Close stops serving, fails calls in flight with ErrClosed and waits
	// for the transport's goroutines, handlers included. It is idempotent.
	Close() error
}

// AsyncCaller is a Transport that can send a request without a goroutine
// of the caller's waiting for the reply (TCP). Go returns at once; done
// gets what Call would have returned, exactly once, possibly before Go
// returns, and must not block. body is not retained after Go returns.
type AsyncCaller interface {
	Go(ctx context.Context, addr string, m Method, body []byte, done func([]byte, error))
}

// Completer receives the result of an asynchronous call (GoTo): what
// Call would have returned, exactly once, possibly before GoTo returns.
// Complete must be quick and must not block, as Go's done. A Completer
// that is part of the caller's own state for the call (a pointer to it)
// spares the closure that Go's done costs per call.
type Completer interface {
	Complete(out []byte, err error)
}

// CompleterCaller is an AsyncCaller whose calls can report to a Completer
// without a closure (TCP).
type CompleterCaller interface {
	GoTo(ctx context.Context, addr string, m Method, body []byte, c Completer)
}

// GoTo is Go reporting to c: with tr's own GoTo when tr is a
// CompleterCaller, else as Go with c.Complete for done.
func GoTo(ctx context.Context, tr Transport, addr string, m Method, body []byte, c Completer) {
	if a, ok := tr.(CompleterCaller); ok {
		a.GoTo(ctx, addr, m, body, c)
		return
	}
	Go(ctx, tr, addr, m, body, c.Complete)
}

// doneFunc is Go's done as a Completer. A func value is one pointer, so
// converting it to the interface allocates nothing.
type doneFunc func([]byte, error)

func (f doneFunc) Complete(out []byte, err error) { f(out, err) }

// Go starts a call on tr: with tr's own Go when tr is an AsyncCaller, else
// as tr.Call in a goroutine of its own (on a copy of body), which the
// caller counts through done if it must wait for it.
func Go(ctx context.Context, tr Transport, addr string, m Method, body []byte, done func([]byte, error)) {
	if a, ok := tr.(AsyncCaller); ok {
		a.Go(ctx, addr, m, body, done)
		return
	}
	b := slices.Clone(body)
	go func() { done(tr.Call(ctx, addr, m, b)) }()
}

// RemoteError is an error a handler returned on the remote node. Handlers
// may return one themselves to choose Code; the meaning of codes belongs to
// the callers. The transport's own remote failures (handler panic, no
// handler) use Code 0.
type RemoteError struct {
	Code uint16
	Msg  string
}

// Error formats the code and message; it does not say which node sent it,
// since the caller knows whom it called.
func (e *RemoteError) Error() string {
	return "remote error " + strconv.Itoa(int(e.Code)) + ": " + e.Msg
}
