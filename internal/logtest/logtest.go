// Package logtest captures log output in tests: every line is kept for
// assertions and echoed to the test's output, which shows only when the
// test fails. Safe for concurrent use (loggers write from many
// goroutines).
package logtest

import (
	"log/slog"
	"testing"

	"github.com/quorumkv/quorumkv/internal/syncio"
)

// Buffer is an io.Writer that keeps what is written and echoes it to a
// test's output.
type Buffer struct {
	kept syncio.Buffer
	t    testing.TB
}

// NewBuffer returns a Buffer echoing to t's output.
func NewBuffer(t testing.TB) *Buffer { return &Buffer{t: t} }

// Write keeps p and echoes it.
func (b *Buffer) Write(p []byte) (int, error) {
	_, _ = b.t.Output().Write(p)
	return b.kept.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string { return b.kept.String() }

// New returns a text logger at level writing into a new Buffer.
func New(t testing.TB, level slog.Level) (*slog.Logger, *Buffer) {
	b := NewBuffer(t)
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level})), b
}
