package wire

import (
	"fmt"
	"testing"
)

// The refusal of an unknown method is recognised in the form every release
// answers it, the last release before this package included (which
// formatted it itself), and nothing else is mistaken for it.
func TestUnknownMethod(t *testing.T) {
	old := fmt.Sprintf("unknown method %d", 200) // node/rpc.go at 8b71df9
	if got := UnknownMethodMsg(200); got != old {
		t.Fatalf("UnknownMethodMsg(200) = %q, the last release answered %q", got, old)
	}
	for _, tc := range []struct {
		code uint16
		msg  string
		want bool
	}{
		{CodeInvalid, old, true},
		{CodeInvalid, UnknownMethodMsg(10), true},
		{CodeInvalid, "partition 3: key hash does not match", false},
		{CodeInternal, old, false},
		{CodeClosed, "node is shutting down", false},
	} {
		if got := IsUnknownMethod(tc.code, tc.msg); got != tc.want {
			t.Errorf("IsUnknownMethod(%d, %q) = %v, want %v", tc.code, tc.msg, got, tc.want)
		}
	}
}
