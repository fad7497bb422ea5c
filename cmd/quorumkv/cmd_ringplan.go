package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/httpapi"
)

// ringSubcommands are the `quorumkv ring` subcommands that stage, plan,
// commit and clear ring changes; `ring` without one shows the ring.
var ringSubcommands = map[string]func(e *env, args []string) int{
	"plan":   func(e *env, args []string) int { return runRingPlan(e, "plan", args) },
	"commit": func(e *env, args []string) int { return runRingPlan(e, "commit", args) },
	"clear":  func(e *env, args []string) int { return runRingPlan(e, "clear", args) },
	"join":   func(e *env, args []string) int { return runRingPlan(e, "join", args) },
	"leave":  func(e *env, args []string) int { return runRingPlan(e, "leave", args) },
	"remove": func(e *env, args []string) int { return runRingPlan(e, "remove", args) },
}

const ringPlanDescription = `
Ring changes can be staged and applied together, as one change:

  quorumkv ring plan          show the staged joins, leaves and removes and
                              what applying them moves: partitions, replica
                              copies and bytes, balance and zone spread
                              before and after
  quorumkv ring leave ID      stage a leave of member ID (it hands its
                              partitions over once committed)
  quorumkv ring remove ID     stage the removal of member ID, down for good
                              (its partitions are rebuilt from the others)
  quorumkv ring join ID       stage again the join of ID, an agent started
                              with --join-mode staged whose join was cleared
  quorumkv ring commit VERSION
                              apply at once everything staged, if it is
                              still the plan of VERSION (ring plan shows
                              it); if anything was staged, cleared or
                              committed, or the ring moved, since, nothing
                              is committed (exit 2): plan and check again
  quorumkv ring commit        apply everything staged now, unchecked (as
                              before plan versions; the answer shows what
                              was committed)
  quorumkv ring clear         drop everything staged

An agent started with --join-mode staged waits in the plan until a commit;
with --join-mode auto (the default) it joins at once. These need the admin
role when the cluster uses tokens. --json prints the node's answer.

Exit codes: 0 done; 2 nothing staged, a stale plan version, or a change
that does not fit the members (a leave of a non-member, ...); 4
unreachable.`

func runRingPlan(e *env, sub string, args []string) int {
	fs, cf := newClientFlagSet(e, "ring "+sub, ringPlanUsage(sub), ringPlanDescription)
	asJSON := fs.Bool("json", false, "print the node's answer as JSON")
	npos, wrong := 0, "ring "+sub+" takes no arguments"
	switch sub {
	case "join", "leave", "remove":
		npos, wrong = 1, "ring "+sub+" takes one argument: the member's id"
	case "commit":
		npos, wrong = -1, commitArgs
	}
	pos, c, code := cf.open(e, args, npos, wrong)
	if c == nil {
		return code
	}
	defer c.Close()
	opts := cfTimeout(cf)
	var p *client.RingPlan
	var err error
	switch sub {
	case "plan":
		p, err = c.RingPlan(e.ctx, opts...)
	case "commit":
		if len(pos) == 1 {
			if !httpapi.ValidPlanVersion(pos[0]) {
				return fail(e, exitBadInput, "%s; %.40q is not one", commitArgs, pos[0])
			}
			opts = append(opts, client.Param("version", pos[0]))
		}
		p, err = c.CommitRing(e.ctx, opts...)
	case "clear":
		p, err = c.ClearRing(e.ctx, opts...)
	default:
		p, err = c.StageRing(e.ctx, sub, pos[0], opts...)
	}
	if err != nil {
		return cf.exitFor(e, err)
	}
	if *asJSON {
		return printJSON(e, p)
	}
	printRingPlan(e.stdout, sub, p)
	return exitOK
}

// commitArgs says what ring commit takes.
const commitArgs = "ring commit takes at most one argument: the version of the plan to commit, as ring plan shows it (16 hex digits)"

func ringPlanUsage(sub string) string {
	switch sub {
	case "join", "leave", "remove":
		return "ID [flags]"
	case "commit":
		return "[VERSION] [flags]"
	}
	return "[flags]"
}

// printRingPlan writes a plan for a person: what is staged, what moves,
// balance and zones before and after, and what to run next.
func printRingPlan(w io.Writer, sub string, p *client.RingPlan) {
	staged := len(p.Joins) + len(p.Leaves) + len(p.Removes)
	switch {
	case p.Status != "":
		fmt.Fprintf(w, "%s\n", p.Status)
	case staged == 0:
		fmt.Fprintf(w, "nothing staged on %s's ring (agents started with --join-mode staged wait here; stage with ring leave|remove ID)\n", p.Node)
		return
	default:
		fmt.Fprintf(w, "staged ring changes as %s sees them: %s\n", p.Node, plural(len(p.Joins), "join")+", "+plural(len(p.Leaves), "leave")+", "+plural(len(p.Removes), "remove"))
	}
	for _, j := range p.Joins {
		by := ""
		if j.By != "" {
			by = ", staged by " + j.By
		}
		fmt.Fprintf(w, "  join    %s (zone %s%s)\n", j.ID, orDash(j.Zone), by)
	}
	for _, id := range p.Leaves {
		fmt.Fprintf(w, "  leave   %s\n", id)
	}
	for _, id := range p.Removes {
		fmt.Fprintf(w, "  remove  %s (down for good: rebuilt from the surviving replicas)\n", id)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	ratio := 0.0
	if p.IdealReplicas > 0 {
		ratio = float64(p.MovedReplicas) / p.IdealReplicas
	}
	fmt.Fprintf(w, "moves: %d of %d partitions, %d replica copies (ideal %.1f, x%.2f", p.MovedPartitions, p.Partitions, p.MovedReplicas, p.IdealReplicas, ratio)
	if p.Rebuilt > 0 {
		fmt.Fprintf(w, "; %d rebuilt from survivors", p.Rebuilt)
	}
	fmt.Fprintf(w, "), %d coordinators change\n", p.CoordinatorsChanged)
	fmt.Fprintf(w, "bytes to copy: about %s (%s)\n", humanBytes(p.Bytes), p.BytesNote)
	b, a := p.Before, p.After
	fmt.Fprintf(w, "members: %d -> %d, n=%d\n", b.Members, a.Members, p.N)
	fmt.Fprintf(w, "balance, max/mean: replicas %.3f -> %.3f, first primaries %.3f -> %.3f (max/ideal after: %.3f and %.3f)\n",
		b.ReplicasMaxOverMean, a.ReplicasMaxOverMean, b.FirstMaxOverMean, a.FirstMaxOverMean, a.ReplicasMaxOverIdeal, a.FirstMaxOverIdeal)
	if a.ZoneGuarantee {
		fmt.Fprintf(w, "zones after: %d; every partition's %d replicas in %d distinct zones\n", a.Zones, p.N, p.N)
	} else {
		fmt.Fprintf(w, "zones after: %d; the zone guarantee does NOT hold: %s\n", a.Zones, a.ZoneReason)
	}
	fmt.Fprintln(w)
	printLoads(w, b, a)
	if sub == "commit" || sub == "clear" {
		return
	}
	fmt.Fprintln(w, "\nquorumkv ring commit applies this; quorumkv ring clear drops it")
	if p.Version != "" {
		fmt.Fprintf(w, "plan version %s: quorumkv ring commit %s applies this plan only, and refuses if what is staged or the ring changes first\n", p.Version, p.Version)
	}
}

// printLoads writes per member and per zone loads before -> after.
func printLoads(w io.Writer, b, a client.RingBalance) {
	type pair struct{ before, after *client.MemberLoad }
	loads := map[string]*pair{}
	var ids []string
	for _, side := range []struct {
		ls     []client.MemberLoad
		before bool
	}{{b.PerMember, true}, {a.PerMember, false}} {
		for i := range side.ls {
			l := &side.ls[i]
			pr, ok := loads[l.ID]
			if !ok {
				pr = &pair{}
				loads[l.ID] = pr
				ids = append(ids, l.ID)
			}
			if side.before {
				pr.before = l
			} else {
				pr.after = l
			}
		}
	}
	slices.Sort(ids)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "MEMBER\tZONE\tREPLICAS\t->\tIDEAL\tFIRST PRIMARY\t->\tIDEAL\t")
	cell := func(l *client.MemberLoad, f func(*client.MemberLoad) string) string {
		if l == nil {
			return "-"
		}
		return f(l)
	}
	for _, id := range ids {
		pr := loads[id]
		z := pr.after
		if z == nil {
			z = pr.before
		}
		reps := func(l *client.MemberLoad) string { return fmt.Sprint(l.Replicas) }
		first := func(l *client.MemberLoad) string { return fmt.Sprint(l.First) }
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", id, orDash(z.Zone),
			cell(pr.before, reps), cell(pr.after, reps), cell(pr.after, func(l *client.MemberLoad) string { return fmt.Sprintf("%.1f", l.IdealReplicas) }),
			cell(pr.before, first), cell(pr.after, first), cell(pr.after, func(l *client.MemberLoad) string { return fmt.Sprintf("%.1f", l.IdealFirst) }))
	}
	tw.Flush()
	if len(a.PerZone) < 2 && len(b.PerZone) < 2 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ZONE\tMEMBERS\tREPLICAS\tFIRST PRIMARY\t")
	for _, z := range a.PerZone {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", orDash(z.Zone), z.Members, z.Replicas, z.First)
	}
	tw.Flush()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// humanBytes writes n bytes as B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"KiB", "MiB", "GiB", "TiB"}[i])
}
