package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quorumkv/quorumkv/client"
)

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runMembers(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "members", "[flags]", `
Lists every member the node knows: its liveness as the failure detector sees
it (alive, suspect, dead, left) and whether it is on the ring. A crashed node
is dead but stays on the ring until it leaves.`)
	asJSON := fs.Bool("json", false, "print the members as JSON")
	return fetchOne(e, cf, args, "members", (*client.Client).Members, func(ms []client.Member) int {
		if *asJSON {
			return printJSON(e, ms)
		}
		printMembers(e.stdout, ms)
		return exitOK
	})
}

// printMembers writes the members table.
func printMembers(w io.Writer, ms []client.Member) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	zones := slices.ContainsFunc(ms, func(m client.Member) bool { return m.Zone != "" })
	if zones {
		fmt.Fprintln(tw, "ID\tSTATE\tON RING\tHTTP\tRPC\tGOSSIP\tRESP\tZONE\t")
	} else {
		fmt.Fprintln(tw, "ID\tSTATE\tON RING\tHTTP\tRPC\tGOSSIP\tRESP\t")
	}
	for _, m := range ms {
		id := m.ID
		if m.Self {
			id += " *"
		}
		onRing := "no"
		if m.OnRing {
			onRing = "yes"
		}
		zone := ""
		if zones {
			zone = orDash(m.Zone) + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, m.State, onRing, orDash(m.HTTP), orDash(m.RPC), orDash(m.Gossip), orDash(m.RESP), zone)
	}
	tw.Flush()
	fmt.Fprintln(w, "(* = the node that answered)")
}

// fetchOne is the body of the commands that take no arguments and show
// one answer of the node at --addr (members, ring, status, transfers): it
// fetches the answer with get, under --timeout and opts, and hands it to
// show, which prints it and returns the exit code. Failures to open the
// client or to fetch map to their exit codes here.
func fetchOne[T any](e *env, cf *clientFlags, args []string, name string,
	get func(*client.Client, context.Context, ...client.RequestOption) (T, error),
	show func(T) int, opts ...client.RequestOption) int {
	_, c, code := cf.open(e, args, 0, name+" takes no arguments")
	if c == nil {
		return code
	}
	defer c.Close()
	v, err := get(c, e.ctx, append(cfTimeout(cf), opts...)...)
	if err != nil {
		return cf.exitFor(e, err)
	}
	return show(v)
}

func cfTimeout(cf *clientFlags) []client.RequestOption {
	if cf.timeout > 0 {
		return []client.RequestOption{client.Timeout(cf.timeout)}
	}
	return nil
}

func printJSON(e *env, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail(e, exitInternal, "%v", err)
	}
	return exitOK
}

func runRing(e *env, args []string) int {
	if len(args) > 0 && ringSubcommands[args[0]] != nil {
		return ringSubcommands[args[0]](e, args[1:]) // cmd_ringplan.go
	}
	fs, cf := newClientFlagSet(e, "ring", "[plan|commit|clear|join ID|leave ID|remove ID] [flags]", `
Shows how the node places partitions: per member, how many partitions it is
the first primary of and how many it replicates among the first N; with
--partitions, runs of consecutive partitions with the same primaries.
With a subcommand, stages, plans, commits or clears ring changes: see
quorumkv ring plan --help.`)
	n := fs.Int("n", 0, "primaries per partition (default: the node's N)")
	parts := fs.Bool("partitions", false, "list partition ranges per primary set")
	asJSON := fs.Bool("json", false, "print the node's /cluster/ring answer as JSON")
	var opts []client.RequestOption
	if *n != 0 {
		opts = append(opts, client.N(*n))
	}
	return fetchOne(e, cf, args, "ring", (*client.Client).Ring, func(r *client.Ring) int {
		if *asJSON {
			return printJSON(e, r)
		}
		printRing(e.stdout, r, *parts)
		return exitOK
	}, opts...)
}

// printRing writes the compact ring summary.
func printRing(w io.Writer, r *client.Ring, parts bool) {
	if r.Mode == "claim" {
		fmt.Fprintf(w, "ring of %d member(s) as %s sees it: %d partitions placed by an agreed assignment, n=%d\n",
			len(r.Members), r.Node, r.Partitions, r.N)
	} else {
		fmt.Fprintf(w, "ring of %d member(s) as %s sees it: %d partitions, %d tokens each, n=%d\n",
			len(r.Members), r.Node, r.Partitions, r.Tokens, r.N)
	}
	switch {
	case r.ZoneGuarantee:
		fmt.Fprintf(w, "zones: every partition's %d primaries are in %d distinct zones\n", r.N, r.N)
	case len(r.Zones) > 0:
		fmt.Fprintf(w, "zones: the guarantee does not hold: %s\n", r.ZoneReason)
	}
	if ch := r.Change; ch != nil && ch.Target == "" {
		fmt.Fprintf(w, "switch in course: reads use %s; writes also reach the previous assignment's owners until every live member reports it\n", ch.Committed)
	} else if ch != nil {
		fmt.Fprintf(w, "change in course: reads use %s until %s is committed; pending owners (partitions gained):", ch.Committed, ch.Target)
		ids := make([]string, 0, len(ch.Pending))
		for id := range ch.Pending {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			ready := ""
			if slices.Contains(ch.Ready, id) {
				ready = ", ready"
			}
			fmt.Fprintf(w, " %s (%d%s)", id, ch.Pending[id], ready)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	first := map[string]int{}
	replica := map[string]int{}
	for _, o := range r.Owners {
		for i, id := range o.Primaries {
			if i == 0 {
				first[id]++
			}
			replica[id]++
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	zoneHead, zoneCol := "", func(string) string { return "" } // no column without zones
	if len(r.Zones) > 0 {
		zoneHead, zoneCol = "ZONE\t", func(id string) string { return orDash(r.Zones[id]) + "\t" }
	}
	fmt.Fprintf(tw, "MEMBER\t%sFIRST PRIMARY\tREPLICA (OF N=%d)\tSHARE\t\n", zoneHead, r.N)
	members := append([]string(nil), r.Members...)
	sort.Strings(members)
	for _, id := range members {
		share := 0.0
		if r.Partitions > 0 {
			share = 100 * float64(first[id]) / float64(r.Partitions)
		}
		fmt.Fprintf(tw, "%s\t%s%d\t%d\t%.1f%%\t\n", id, zoneCol(id), first[id], replica[id], share)
	}
	tw.Flush()
	if !parts {
		return
	}
	fmt.Fprintln(w, "\nPARTITIONS\tPRIMARIES")
	for i := 0; i < len(r.Owners); {
		j := i
		key := strings.Join(r.Owners[i].Primaries, ",")
		for j+1 < len(r.Owners) && strings.Join(r.Owners[j+1].Primaries, ",") == key {
			j++
		}
		rng := fmt.Sprint(r.Owners[i].Partition)
		if j > i {
			rng += "-" + fmt.Sprint(r.Owners[j].Partition)
		}
		fmt.Fprintf(w, "%s\t%s\n", rng, key)
		i = j + 1
	}
}

func runStatus(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "status", "[flags]", `
Summarises one node: version, data directory, uptime, ring, default quorum,
store counters and members. --json prints the node's whole /status answer.`)
	asJSON := fs.Bool("json", false, "print the node's /status answer as JSON")
	return fetchOne(e, cf, args, "status", (*client.Client).Status, func(st *client.Status) int {
		if *asJSON {
			_, _ = e.stdout.Write(st.Raw)
			if len(st.Raw) > 0 && st.Raw[len(st.Raw)-1] != '\n' {
				fmt.Fprintln(e.stdout)
			}
			return exitOK
		}
		printStatus(e.stdout, st, time.Now())
		return exitOK
	})
}

func printStatus(w io.Writer, st *client.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	up := "-"
	if !st.Started.IsZero() {
		up = now.Sub(st.Started).Round(time.Second).String()
	}
	dir := st.DataDir
	if dir == "" {
		dir = "(in memory)"
	}
	fmt.Fprintf(tw, "node\t%s\n", st.Node)
	version := orDash(st.Version)
	if st.Build.Go != "" {
		version = fmt.Sprintf("%s (%s)", st.Build.Version, st.Build.Go)
		if st.Build.Commit != "" {
			version = fmt.Sprintf("%s (commit %s, %s)", st.Build.Version, st.Build.Commit, st.Build.Go)
		}
	}
	fmt.Fprintf(tw, "version\t%s\n", version)
	fmt.Fprintf(tw, "data dir\t%s (sync=%v)\n", dir, st.Sync)
	fmt.Fprintf(tw, "uptime\t%s\n", up)
	fmt.Fprintf(tw, "ring\t%d member(s), %d partitions\n", st.RingSize, st.Partitions)
	fmt.Fprintf(tw, "alive\t%d (this node included)\n", st.Alive)
	fmt.Fprintf(tw, "defaults\t%s\n", kvList(st.Defaults, "n", "r", "w", "pr", "pw", "dw", "timeout"))
	fmt.Fprintf(tw, "store\t%s\n", kvList(st.Store))
	printHints(tw, st.Raw)
	var ms []string
	for _, m := range st.Members {
		ring := ""
		if !m.OnRing {
			ring = ", off ring"
		}
		ms = append(ms, fmt.Sprintf("%s (%s%s)", m.ID, m.State, ring))
	}
	fmt.Fprintf(tw, "members\t%s\n", strings.Join(ms, ", "))
	for _, w := range st.Warnings {
		fmt.Fprintf(tw, "WARNING\t%s\n", w)
	}
	tw.Flush()
}

// printHints prints the hinted-handoff part of a /status answer (node's
// HintsStatus): totals, then one line per target. It prints nothing when
// the answer has no hints section.
func printHints(w io.Writer, raw []byte) {
	var body struct {
		Hints *struct {
			Stored, Delivered, Failed uint64
			Dropped                   map[string]any
			Targets                   []struct {
				Target           string
				Alive            bool
				Pending          int
				Bytes            int64
				OldestAgeSeconds float64 `json:"oldest_age_seconds"`
				Delivering       bool
				Failures         int
				RetryInSeconds   float64 `json:"retry_in_seconds"`
				LastError        string  `json:"last_error"`
				Delivered        uint64
				Failed           uint64
				Dropped          map[string]any
			}
			MarkedCount int `json:"repair_marked_count"`
		}
	}
	if json.Unmarshal(raw, &body) != nil || body.Hints == nil {
		return
	}
	h := body.Hints
	fmt.Fprintf(w, "hints\tstored=%d delivered=%d failed=%d dropped: %s; partitions marked for repair: %d\n",
		h.Stored, h.Delivered, h.Failed, kvList(h.Dropped, "bytes", "age", "corrupt"), h.MarkedCount)
	for _, t := range h.Targets {
		state := "down"
		if t.Alive {
			state = "alive"
		}
		if t.Delivering {
			state += ", delivering"
		}
		if t.Failures > 0 {
			state += fmt.Sprintf(", %d failed pass(es), retry in %s", t.Failures,
				(time.Duration(t.RetryInSeconds * float64(time.Second))).Round(time.Millisecond))
		}
		line := fmt.Sprintf("%d pending (%d bytes, oldest %s), %s; delivered=%d failed=%d",
			t.Pending, t.Bytes, (time.Duration(t.OldestAgeSeconds) * time.Second).String(), state, t.Delivered, t.Failed)
		if len(t.Dropped) > 0 {
			line += " dropped: " + kvList(t.Dropped)
		}
		if t.LastError != "" {
			line += "; last error: " + t.LastError
		}
		fmt.Fprintf(w, "  hints for %s\t%s\n", t.Target, line)
	}
}

// kvList formats a map as "k=v k=v", the given keys first, then the rest
// sorted.
func kvList(m map[string]any, first ...string) string {
	var parts []string
	seen := map[string]bool{}
	for _, k := range first {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
