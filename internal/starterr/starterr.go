// Package starterr is the error of a node start that one setting explains,
// so a command line can name the flag to change.
package starterr

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// StartError is a failure of a node's start that one setting explains: a listen
// address already taken, a data directory locked by another process or
// belonging to another node. Setting is the agent's name for it (http, rpc,
// gossip, resp, data-dir), so a command line can name the flag to change.
type StartError struct {
	Setting string // http, rpc, gossip, resp or data-dir
	Value   string // the address or directory as configured
	Err     error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Setting, e.Value, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// InUse reports an address that another process already listens on.
// memberlist formats its listener errors with %v, so the text is checked
// too.
func (e *StartError) InUse() bool {
	return errors.Is(e.Err, syscall.EADDRINUSE) || strings.Contains(e.Err.Error(), "address already in use")
}

// Wrap wraps err as a *StartError for setting, unless it already is one
// (or is nil).
func Wrap(setting, value string, err error) error {
	var se *StartError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return &StartError{Setting: setting, Value: value, Err: err}
}
