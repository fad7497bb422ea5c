package transport

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
)

// panicMsg is what a caller sees when the handler panicked. The panic value
// and stack stay in the serving node's log: they may hold data the caller
// should not see.
const panicMsg = "transport: handler panicked"

// runHandler calls h and turns its outcome into a reply body or a
// RemoteError, recovering a panic so that one bad request cannot take the
// process down.
func runHandler(ctx context.Context, h Handler, log *slog.Logger, from string, m Method, body []byte) (resp []byte, rerr *RemoteError) {
	if h == nil {
		return nil, &RemoteError{Msg: "transport: no handler"}
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panicked", "peer", from, "method", m, "panic", p, "stack", string(debug.Stack()))
			resp, rerr = nil, &RemoteError{Msg: panicMsg}
		}
	}()
	resp, err := h.ServeRPC(ctx, from, m, body)
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) && re != nil {
			return nil, re
		}
		return nil, &RemoteError{Msg: err.Error()}
	}
	return resp, nil
}

// orDiscard returns l, or a logger that drops everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
