package main

import (
	"context"
	"fmt"

	"github.com/quorumkv/quorumkv/bench"
)

// runCreates runs --workload creates: per setting, every key raced for by
// --racers create-only writes through different nodes, and prints how
// often several won. Exit 5 when an acknowledged create went missing.
func (p *benchPlan) runCreates(e *env, ctx context.Context, c bench.Creator) int {
	var results []*bench.CreatesResult
	code := exitOK
	for _, q := range p.quorums {
		fmt.Fprintf(e.stderr, "quorumkv bench: racing creates at %s: %d keys, %d racers each\n", q, p.creates.Keys, p.creates.Racers)
		res, err := bench.RaceCreates(ctx, c, *p.creates, q)
		if res != nil {
			results = append(results, res)
		}
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(e.stderr, "quorumkv bench: interrupted; results so far:")
				break
			}
			fmt.Fprintf(e.stderr, "quorumkv bench: %s: %v\n", q, err)
			code = exitInternal
			break
		}
	}
	if err := bench.WriteCreatesText(e.stdout, results); err != nil {
		return fail(e, exitInternal, "bench: %v", err)
	}
	for _, r := range results {
		if r.Lost > 0 && code == exitOK {
			fmt.Fprintf(e.stderr, "quorumkv bench: consistency violated: %s lost %d acknowledged create(s)\n", r.Quorum, r.Lost)
			code = exitViolation
		}
	}
	return code
}
