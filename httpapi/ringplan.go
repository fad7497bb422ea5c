package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/ring"
)

// RingStager is a Cluster whose ring changes can be staged, planned,
// committed and cleared (`quorumkv ring plan|commit|clear`, and `ring
// leave|remove|join ID` to stage). Handle registers its endpoints. by is
// the admin principal's name ("" when authentication is off).
type RingStager interface {
	// RingPlan plans the staged changes.
	RingPlan() (api.RingPlan, error)
	// StageRing stages op ("join", "leave" or "remove") of member id and
	// returns the new plan.
	StageRing(op, id, by string) (api.RingPlan, error)
	// CommitPlan applies the staged changes if their plan's version
	// (api.RingPlan.Version) is version, and otherwise commits nothing and
	// returns an error matching ErrStalePlan; version "" commits whatever
	// is staged. ClearRing drops them. Both return the plan of what they
	// committed or dropped.
	CommitPlan(version, by string) (api.RingPlan, error)
	ClearRing(by string) (api.RingPlan, error)
}

// Errors a RingStager returns that the endpoints answer with 409 Conflict
// (and ring.ErrInvalidChange, a change that does not fit the members).
var (
	// ErrNothingStaged refuses a commit or clear with nothing staged.
	ErrNothingStaged = errors.New("nothing is staged: stage joins (agents started with --join-mode staged, or ring join ID), leaves (ring leave ID) or removes (ring remove ID) first")
	// ErrNoStaging means the cluster's placement cannot stage changes.
	ErrNoStaging = errors.New("this cluster's ring cannot stage changes")
	// ErrStalePlan refuses a commit of a plan version that is not the
	// current plan's: what is staged, or the ring it applies to, changed
	// since that plan was shown.
	ErrStalePlan = errors.New("stale plan")
)

// ValidPlanVersion reports whether v has the form of a plan version: 16
// lowercase hex digits.
func ValidPlanVersion(v string) bool {
	if len(v) != 16 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// HandleRingStaging registers the staging endpoints of s on h:
// GET /admin/ring/plan, POST /admin/ring/stage?op=join|leave|remove&node=ID,
// POST /admin/ring/commit[?version=V] (with V, only the plan of that
// version: see CommitPlan) and POST /admin/ring/clear. They are under
// /admin/, so they need the admin role when tokens are on.
func (h *Handler) HandleRingStaging(s RingStager) {
	h.mux.HandleFunc("GET /admin/ring/plan", func(w http.ResponseWriter, r *http.Request) {
		writeRingPlan(w, func() (api.RingPlan, error) { return s.RingPlan() })
	})
	h.mux.HandleFunc("POST /admin/ring/stage", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		op, id := q.Get("op"), q.Get("node")
		switch {
		case op != "join" && op != "leave" && op != "remove":
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("op=%q: want join, leave or remove", op), Code: api.CodeBadParameter, Param: "op"})
			return
		case id == "" || len(id) > ring.MaxIDLen:
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("node=%q: want a member id", id), Code: api.CodeBadParameter, Param: "node"})
			return
		}
		writeRingPlan(w, func() (api.RingPlan, error) { return s.StageRing(op, id, principal(r)) })
	})
	h.mux.HandleFunc("POST /admin/ring/commit", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		v := q.Get("version") // none: commit whatever is staged
		if q.Has("version") && (len(q["version"]) > 1 || !ValidPlanVersion(v)) {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("version=%.40q: want the 16 hex digits of the plan's version, as ring plan shows it", v), Code: api.CodeBadParameter, Param: "version"})
			return
		}
		writeRingPlan(w, func() (api.RingPlan, error) { return s.CommitPlan(v, principal(r)) })
	})
	h.mux.HandleFunc("POST /admin/ring/clear", func(w http.ResponseWriter, r *http.Request) {
		writeRingPlan(w, func() (api.RingPlan, error) { return s.ClearRing(principal(r)) })
	})
}

// principal names the admin of request r, "" without authentication.
func principal(r *http.Request) string {
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		return p.Name
	}
	return ""
}

// writeRingPlan answers with the plan f returns, or its error: 409 for a
// change that cannot be staged or applied, 503 otherwise.
func writeRingPlan(w http.ResponseWriter, f func() (api.RingPlan, error)) {
	p, err := f()
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, p)
	case errors.Is(err, ring.ErrInvalidChange), errors.Is(err, ErrNothingStaged), errors.Is(err, ErrNoStaging), errors.Is(err, ErrStalePlan):
		writeError(w, http.StatusConflict, api.CodeConflict, err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
	}
}

// RingPlanBody converts a planned change into its API body for node.
// bytesNote says how the partition sizes behind cp.Bytes were estimated.
func RingPlanBody(node string, cp *ring.ChangePlan, staged map[ring.NodeID]string, bytesNote string) api.RingPlan {
	p := api.RingPlan{Node: node, Partitions: cp.After.Partitions, N: cp.After.N,
		MovedPartitions: len(cp.Moves), MovedReplicas: cp.Moved, IdealReplicas: cp.IdealMoved, Rebuilt: cp.Rebuilt,
		CoordinatorsChanged: cp.FirstChanged, Bytes: cp.Bytes, BytesNote: bytesNote,
		Before: balanceBody(cp.Before, cp.ZonesBefore), After: balanceBody(cp.After, cp.ZonesAfter)}
	for _, j := range cp.Change.Joins {
		p.Joins = append(p.Joins, api.StagedJoin{ID: string(j.ID), Zone: j.Zone, By: staged[j.ID]})
	}
	for _, id := range cp.Change.Leaves {
		p.Leaves = append(p.Leaves, string(id))
	}
	for _, id := range cp.Change.Removes {
		p.Removes = append(p.Removes, string(id))
	}
	if !cp.BytesKnown {
		p.BytesNote += " (some partitions' sizes unknown: counted as 0)"
	}
	return p
}

func balanceBody(st ring.Stats, zones []ring.ZoneLoad) api.RingBalance {
	b := api.RingBalance{Members: st.Members,
		ReplicasMaxOverMean: st.Replicas.MaxOverMean, ReplicasMaxOverIdeal: st.Replicas.MaxOverIdeal,
		FirstMaxOverMean: st.First.MaxOverMean, FirstMaxOverIdeal: st.First.MaxOverIdeal,
		Zones: st.Zones.Zones, ZoneGuarantee: st.Zones.Held, ZoneReason: st.Zones.Reason}
	for _, l := range st.Loads {
		b.PerMember = append(b.PerMember, api.MemberLoad{ID: string(l.ID), Zone: l.Zone, Replicas: l.Replicas,
			IdealReplicas: l.IdealReplicas, First: l.First, IdealFirst: l.IdealFirst})
	}
	for _, z := range zones {
		b.PerZone = append(b.PerZone, api.ZoneLoad{Zone: z.Zone, Members: z.Members, Replicas: z.Replicas, First: z.First})
	}
	return b
}
