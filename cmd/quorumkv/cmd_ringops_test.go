package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quorumkv/quorumkv/api"
)

// fakeLeaver is a node whose leave is done after done calls of
// /admin/leave (never when done is 0); its ring shows a change in course
// in which it still owns one partition.
func fakeLeaver(t *testing.T, done int64) (addr string, calls *atomic.Int64) {
	calls = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/admin/leave":
			if n := calls.Add(1); done == 0 || n < done {
				w.WriteHeader(http.StatusServiceUnavailable)
				_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodeUnavailable,
					Error: "left the ring, but its partitions are not handed over yet (2 to hand off; new owners may still be receiving them): context canceled"})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"node": "n5", "status": "left the ring; partitions handed over"})
		case "/cluster/ring":
			_ = json.NewEncoder(w).Encode(api.Ring{Node: "n5", N: 3, Partitions: 2,
				Owners: []api.Partition{{Partition: 0, Primaries: []string{"n1", "n5", "n2"}}, {Partition: 1, Primaries: []string{"n1", "n2", "n3"}}},
				Change: &api.RingChange{Pending: map[string]int{"n3": 1, "n4": 2}, Ready: []string{"n4"}}})
		case "/healthz":
			_ = json.NewEncoder(w).Encode(api.Health{Status: "ok", Node: "n5"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), calls
}

// leave waits on the handoff, call after call, showing its progress, and
// gives up at --timeout with a message saying the leave goes on and how
// to watch it.
func TestLeaveWaitsOnProgress(t *testing.T) {
	addr, calls := fakeLeaver(t, 3)
	code, out, errOut := runCmd(t, nil, "", "leave", "--addr", addr, "--progress", "50ms")
	if code != exitOK || calls.Load() != 3 {
		t.Fatalf("exit %d after %d calls, stdout %q stderr %q", code, calls.Load(), out, errOut)
	}
	for _, want := range []string{"n5: leaving; 1 partition copies still on it; 1 of 2 new owners (n3 n4) hold the 3 copies they gain (ready: n4)",
		"left the ring; partitions handed over"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "leaving;") != 1 {
		t.Errorf("an unchanged progress printed more than once:\n%s", out)
	}

	addr, calls = fakeLeaver(t, 0)
	code, out, errOut = runCmd(t, nil, "", "leave", "--addr", addr, "--progress", "50ms", "--timeout", "300ms")
	if code != exitUnavailable || calls.Load() < 2 {
		t.Fatalf("never done: exit %d after %d calls, stdout %q stderr %q", code, calls.Load(), out, errOut)
	}
	for _, want := range []string{"gave up waiting after 300ms (--timeout)", "the handoff goes on in the background", "'quorumkv leave --addr " + addr + "' again"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, _ := runCmd(t, nil, "", "leave", "--addr", addr, "--progress", "0s"); code != exitBadInput {
		t.Errorf("--progress 0s: exit %d", code)
	}
}

// With several addresses, failover would make whichever node answers
// leave: leave refuses a list, before any request.
func TestLeaveRefusesAddressList(t *testing.T) {
	down, calls := fakeLeaver(t, 1)
	addr, _ := fakeLeaver(t, 1)
	code, out, errOut := runCmd(t, nil, "", "leave", "--addr", down+","+addr)
	if code != exitBadInput || calls.Load() != 0 || !strings.Contains(errOut, "names 2 addresses") {
		t.Fatalf("exit %d after %d calls, stdout %q stderr %q", code, calls.Load(), out, errOut)
	}
	if code, out, errOut := runCmd(t, nil, "", "leave", "--addr", addr); code != exitOK {
		t.Fatalf("one address: exit %d, stdout %q stderr %q", code, out, errOut)
	}
}
