package bench

import (
	"context"
	"fmt"
	"strconv"
)

// Sweep runs the same workload (same seed, same parameters) once per quorum
// setting, in order, and collects the results in one Report. Each setting
// gets its own keys (KeyPrefix + "N-R-W/"), so one setting's data neither
// feeds the next one's reads nor adds to its siblings. Progress lines are
// labelled with the setting.
//
// If a run fails, Sweep stops and returns the report so far (including a
// canceled run's partial result) with the error.
func Sweep(ctx context.Context, c Client, cfg Config, qs []Quorum) (*Report, error) {
	if len(qs) == 0 || len(qs) > MaxSettings {
		return nil, fmt.Errorf("sweep: %d settings, want 1 to %d: %w", len(qs), MaxSettings, ErrInvalidConfig)
	}
	rep := NewReport()
	for _, q := range qs {
		rc := cfg
		rc.Quorum = q
		rc.KeyPrefix = cfg.KeyPrefix + strconv.Itoa(q.N) + "-" + strconv.Itoa(q.R) + "-" + strconv.Itoa(q.W) + "/"
		rc.Label = q.String()
		if cfg.Label != "" {
			rc.Label = cfg.Label + " " + q.String()
		}
		res, err := Run(ctx, c, rc)
		if res != nil {
			rep.Results = append(rep.Results, res)
		}
		if err != nil {
			return rep, fmt.Errorf("sweep %s: %w", q, err)
		}
	}
	return rep, nil
}
