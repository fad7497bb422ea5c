package antientropy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/replica"
)

// ServeRepair returns the handler of POST
// /admin/repair[?partition=P][&timeout=D] over repair (a Driver's Repair)
// and partitions (the ring's count now): 200 with the RepairReport (its
// Failed counts exchanges that could not run), 400 for a bad or unowned
// partition, 503 while quarantined or when the timeout ended the repair.
func ServeRepair(repair func(ctx context.Context, p int) (RepairReport, error), partitions func() int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := -1
		if v := r.URL.Query().Get("partition"); v != "" {
			q, err := strconv.Atoi(v)
			if err != nil || q < 0 || q >= partitions() {
				httpapi.WriteJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("partition %q: want 0 to %d", v, partitions()-1),
					Code: api.CodeBadParameter, Param: "partition"})
				return
			}
			p = q
		}
		ctx := r.Context()
		if v := r.URL.Query().Get("timeout"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				httpapi.WriteJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("timeout %q: want a positive duration such as 30s", v),
					Code: api.CodeBadParameter, Param: "timeout"})
				return
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		rep, err := repair(ctx, p)
		switch {
		case errors.Is(err, ErrNotReplica):
			httpapi.WriteJSON(w, http.StatusBadRequest, api.Error{Error: err.Error() + "; ask one of its primaries (quorumkv ring --partitions)",
				Code: "not_replica", Param: "partition"})
		case errors.Is(err, replica.ErrQuarantined):
			httpapi.WriteError(w, http.StatusServiceUnavailable, "quarantined", err.Error())
		case err != nil:
			httpapi.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
		default:
			httpapi.WriteJSON(w, http.StatusOK, rep)
		}
	}
}
