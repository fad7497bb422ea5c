package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/ring"
)

// fakeStager records the staging calls and answers with err when set;
// a commit of a version other than current is refused as stale.
type fakeStager struct {
	calls   []string
	err     error
	current string
}

func (f *fakeStager) answer(call string) (api.RingPlan, error) {
	f.calls = append(f.calls, call)
	return api.RingPlan{Node: "n1", Status: call}, f.err
}

func (f *fakeStager) RingPlan() (api.RingPlan, error) { return f.answer("plan") }
func (f *fakeStager) StageRing(op, id, by string) (api.RingPlan, error) {
	return f.answer(fmt.Sprintf("stage %s %s by %q", op, id, by))
}
func (f *fakeStager) CommitPlan(version, by string) (api.RingPlan, error) {
	switch {
	case version == "":
		return f.answer("commit")
	case version != f.current:
		f.calls = append(f.calls, "refused "+version)
		return api.RingPlan{}, fmt.Errorf("%w: nothing committed", ErrStalePlan)
	}
	return f.answer("commit " + version)
}
func (f *fakeStager) ClearRing(by string) (api.RingPlan, error) { return f.answer("clear") }

// The staging endpoints: what they call, their parameter checks, and the
// status of each kind of refusal.
func TestRingStagingEndpoints(t *testing.T) {
	h := newHandler(&fake{})
	s := &fakeStager{}
	h.HandleRingStaging(s)
	for _, tc := range []struct{ method, target, call string }{
		{"GET", "/admin/ring/plan", "plan"},
		{"POST", "/admin/ring/stage?op=leave&node=n3", `stage leave n3 by ""`},
		{"POST", "/admin/ring/stage?op=remove&node=n4", `stage remove n4 by ""`},
		{"POST", "/admin/ring/stage?op=join&node=n9", `stage join n9 by ""`},
		{"POST", "/admin/ring/commit", "commit"},
		{"POST", "/admin/ring/clear", "clear"},
	} {
		w := do(h, tc.method, tc.target, "")
		var p api.RingPlan
		if err := json.Unmarshal(w.Body.Bytes(), &p); w.Code != 200 || err != nil || p.Status != tc.call {
			t.Fatalf("%s %s: %d %q (%v), want the answer of %q", tc.method, tc.target, w.Code, w.Body, err, tc.call)
		}
	}
	calls := len(s.calls)
	if e := apiError(t, do(h, "POST", "/admin/ring/stage?op=evict&node=n3", ""), 400, api.CodeBadParameter); e.Param != "op" {
		t.Fatalf("bad op: %+v", e)
	}
	if e := apiError(t, do(h, "POST", "/admin/ring/stage?op=leave", ""), 400, api.CodeBadParameter); e.Param != "node" {
		t.Fatalf("no node: %+v", e)
	}
	// A wrong method on an admin route is 405 with the allowed ones, not
	// 404 (the catch-all route matches every method).
	w := do(h, "GET", "/admin/ring/commit", "")
	apiError(t, w, 405, api.CodeMethodNotAllowed)
	if allow := w.Header().Get("Allow"); allow != "POST" {
		t.Fatalf("GET /admin/ring/commit: Allow %q, want POST", allow)
	}
	w = do(h, "DELETE", "/admin/ring/plan", "")
	apiError(t, w, 405, api.CodeMethodNotAllowed)
	if allow := w.Header().Get("Allow"); allow != "GET, HEAD" {
		t.Fatalf("DELETE /admin/ring/plan: Allow %q, want GET, HEAD", allow)
	}
	apiError(t, do(h, "POST", "/admin/ring/nowhere", ""), 404, api.CodeUnknownPath)
	if len(s.calls) != calls {
		t.Fatalf("refused requests reached the stager: %v", s.calls[calls:])
	}
	for err, status := range map[error]int{
		ErrNothingStaged: 409,
		fmt.Errorf("%w: leave of \"x\", which is not a member", ring.ErrInvalidChange): 409,
		ErrNoStaging:                 409,
		errors.New("ring not ready"): 503,
	} {
		s.err = err
		code := api.CodeConflict
		if status == 503 {
			code = api.CodeUnavailable
		}
		if e := apiError(t, do(h, "POST", "/admin/ring/commit", ""), status, code); e.Error != err.Error() {
			t.Fatalf("error %q, want %q", e.Error, err)
		}
	}
}

// RingPlanBody carries a planned change into the API body unchanged.
func TestRingPlanBody(t *testing.T) {
	cfg := ring.Config{Mode: ring.ModeClaim, Partitions: 32, Replicas: 3}
	ms := []ring.Member{{ID: "a", Zone: "x"}, {ID: "b", Zone: "y"}, {ID: "c", Zone: "z"}, {ID: "d", Zone: "x"}}
	committed, err := ring.Plan(cfg, nil, ms)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ring.PlanChange(cfg, committed, ms, ring.Change{Joins: []ring.Member{{ID: "e", Zone: "y"}}, Leaves: []ring.NodeID{"a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := RingPlanBody("n1", cp, map[ring.NodeID]string{"e": "e"}, "from n1's partitions")
	if p.Node != "n1" || p.Partitions != 32 || p.N != 3 || len(p.Joins) != 1 || p.Joins[0] != (api.StagedJoin{ID: "e", Zone: "y", By: "e"}) ||
		len(p.Leaves) != 1 || p.MovedReplicas != cp.Moved || p.MovedPartitions != len(cp.Moves) || p.Before.Members != 4 || p.After.Members != 4 ||
		!p.After.ZoneGuarantee || len(p.After.PerMember) != 4 || len(p.After.PerZone) != 3 || p.BytesNote != "from n1's partitions (some partitions' sizes unknown: counted as 0)" {
		t.Fatalf("body %+v", p)
	}
}

// POST /admin/ring/commit?version=V commits through CommitPlan: a stale
// version is 409, a malformed one 400 before the stager is asked;
// without version whatever is staged is committed, as before.
func TestRingCommitVersion(t *testing.T) {
	h := newHandler(&fake{})
	s := &fakeStager{current: "00112233445566ff"}
	h.HandleRingStaging(s)
	var p api.RingPlan
	if w := do(h, "POST", "/admin/ring/commit?version=00112233445566ff", ""); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != "commit 00112233445566ff" {
		t.Fatalf("current version: %d %q", w.Code, w.Body)
	}
	if e := apiError(t, do(h, "POST", "/admin/ring/commit?version=0011223344556600", ""), 409, api.CodeConflict); !strings.Contains(e.Error, "stale plan: nothing committed") {
		t.Fatalf("stale version: %+v", e)
	}
	calls := len(s.calls)
	for _, v := range []string{"", "now", "00112233445566FF", "00112233445566ff0", "0011223344556g", "00112233445566ff&version=00112233445566ff"} {
		if e := apiError(t, do(h, "POST", "/admin/ring/commit?version="+v, ""), 400, api.CodeBadParameter); e.Param != "version" {
			t.Fatalf("version=%q: %+v", v, e)
		}
	}
	if len(s.calls) != calls {
		t.Fatalf("malformed versions reached the stager: %v", s.calls[calls:])
	}
	if w := do(h, "POST", "/admin/ring/commit", ""); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != "commit" {
		t.Fatalf("commit without a version: %d %q", w.Code, w.Body)
	}
}
