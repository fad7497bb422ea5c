package starterr

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestWrap(t *testing.T) {
	if Wrap("http", ":1", nil) != nil {
		t.Fatal("nil wrapped")
	}
	err := Wrap("rpc", "127.0.0.1:7000", fmt.Errorf("listen: %w", syscall.EADDRINUSE))
	var se *StartError
	if !errors.As(err, &se) || se.Setting != "rpc" || !se.InUse() || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("%#v: want an in-use StartError for rpc", err)
	}
	if again := Wrap("http", ":1", err); again != err {
		t.Fatalf("rewrapped: %v", again)
	}
	if (&StartError{Setting: "gossip", Err: errors.New("bind: address already in use")}).InUse() != true {
		t.Fatal("memberlist's text form not seen as in use")
	}
}
