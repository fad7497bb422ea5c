package secretwatch

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Issue 19, item 6: memberlist's undecryptable-gossip lines become one
// "cluster secret mismatch" line per LogEvery, counted; a join that
// fails on the secret alone wraps ErrMismatch and marks the node.
func TestSecretWatch(t *testing.T) {
	var logs strings.Builder // the watch logs from the caller's goroutine
	now := time.Unix(1000, 0)
	w := New(slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })

	if w.LogLine("[DEBUG] memberlist: Stream connection from=127.0.0.1:5000") {
		t.Fatal("an ordinary memberlist line was taken for a mismatch")
	}
	for range 20 { // a joiner retrying every 500ms for 10s
		if !w.LogLine("[ERR] memberlist: failed to receive: no installed keys could decrypt the message from=127.0.0.1:44592") {
			t.Fatal("undecryptable gossip not recognised")
		}
		now = now.Add(500 * time.Millisecond)
	}
	if got := strings.Count(logs.String(), "cluster secret mismatch"); got != 1 {
		t.Fatalf("%d mismatch lines in 10s, want 1 (rate-limited):\n%s", got, logs.String())
	}
	w.LogLine("[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=127.0.0.1:44593")
	if got := strings.Count(logs.String(), "cluster secret mismatch"); got != 2 || !strings.Contains(logs.String(), "since_last_report=20") {
		t.Fatalf("after 10s: %d lines, want 2 reporting the 20 unlogged:\n%s", got, logs.String())
	}
	st := w.Status()
	if st.Count != 21 || st.Peer != "127.0.0.1:44593" || st.JoinFailing {
		t.Fatalf("status %+v", st)
	}

	err := w.JoinResult([]string{"127.0.0.1:7947"}, 0, errors.New("1 error occurred: failed to join 127.0.0.1:7947: remote state is encrypted and encryption is not configured"))
	if !errors.Is(err, ErrMismatch) || !w.Status().JoinFailing {
		t.Fatalf("join refused for the secret: %v, status %+v", err, w.Status())
	}
	refused := errors.New("failed to join 127.0.0.1:7947: dial tcp: connection refused")
	if err := w.JoinResult([]string{"127.0.0.1:7947"}, 0, refused); err != refused || w.Status().JoinFailing {
		t.Fatalf("a seed that is down is not a mismatch: %v, status %+v", err, w.Status())
	}
	if err := w.JoinResult([]string{"127.0.0.1:7947"}, 1, nil); err != nil || w.Status().JoinFailing {
		t.Fatalf("a join that worked: %v, status %+v", err, w.Status())
	}
}
