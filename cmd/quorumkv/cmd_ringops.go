package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/client"
)

const transfersDescription = `
Shows the ring change in course as the node at --addr sees it: the
assignment reads use and the one the cluster moves to, how many partitions
the node gains as a pending owner and how many it has received whole, the
old owners its transfers wait for (down but not removed: bring them back or
remove them), and the members that do not route with the new assignment
yet; the bytes and keys moved, an estimate of what is left, the rate and
ETA, the throttle in force (agent flags --transfer-rate, --transfer-min-rate,
--transfer-partitions), and each partition being pulled now with its old
owner, bytes done and left, rate and ETA. --json prints the node's
/cluster/transfers answer.

Exit codes: 0 shown; 4 unreachable.`

func runTransfers(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "transfers", "[flags]", transfersDescription)
	asJSON := fs.Bool("json", false, "print the node's /cluster/transfers answer as JSON")
	return fetchOne(e, cf, args, "transfers", (*client.Client).Transfers, func(t *api.Transfers) int {
		if *asJSON {
			return printJSON(e, t)
		}
		printTransfers(e.stdout, t)
		return exitOK
	})
}

// printTransfers writes the summary of a node's side of the ring change.
func printTransfers(w io.Writer, t *api.Transfers) {
	if t.Target == "" {
		fmt.Fprintf(w, "%s: no ring change in course (reads use %s)\n", t.Node, orDash(t.Committed))
		return
	}
	fmt.Fprintf(w, "%s: moving from %s to %s\n", t.Node, t.Committed, t.Target)
	state := "receiving"
	if t.Ready {
		state = "ready"
	}
	fmt.Fprintf(w, "pending owner of %d partition(s): %d received whole (%s)\n", t.Gains, t.Received, state)
	if t.Resumed > 0 {
		fmt.Fprintf(w, "resumed after a restart with %d partition(s) already received\n", t.Resumed)
	}
	th := t.Throttle
	fmt.Fprintf(w, "moved %s (%d keys), about %s left, at %s/s, ETA %s; throttle %s/s now (cap %s/s, floor %s/s), %d partition(s) at once\n",
		iec(float64(t.BytesDone)), t.KeysDone, iec(float64(t.BytesLeft)), iec(t.Rate), etaText(t.ETASeconds),
		iec(th.BytesPerSecond), iec(float64(th.MaxBytesPerSecond)), iec(float64(th.MinBytesPerSecond)), th.Partitions)
	if len(t.Moving) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tFROM\tTO\tDONE\tLEFT\tKEYS LEFT\tRATE\tETA")
		for _, m := range t.Moving {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s/s\t%s\n", m.Partition, m.From, m.To, iec(float64(m.BytesDone)),
				iec(float64(m.BytesLeft)), m.KeysLeft, iec(m.Rate), etaText(m.ETASeconds))
		}
		tw.Flush()
	}
	if len(t.WaitingFor) > 0 {
		fmt.Fprintf(w, "waiting for old owners down but on the ring: %s (restart them, or remove them for good)\n", strings.Join(t.WaitingFor, ", "))
	}
	if len(t.Unaware) > 0 {
		fmt.Fprintf(w, "members not routing with the new assignment yet: %s\n", strings.Join(t.Unaware, ", "))
	}
}

// iec formats a byte count (or rate) with a binary unit.
func iec(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for ; b >= 1024 && i < len(units)-1; i++ {
		b /= 1024
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", b, units[0])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// etaText formats an ETA in seconds, "unknown" when absent.
func etaText(s *float64) string {
	if s == nil {
		return "unknown"
	}
	return (time.Duration(*s) * time.Second).Round(time.Second).String()
}

const leaveDescription = `
Asks the node at --addr (one address: a list is refused, since failover
would make another node leave) to leave the ring. Its partitions move to the
remaining members: they fetch them by anti-entropy while the leaving node
hands its records over and drops them. The command waits for the handoff,
printing its progress every --progress (the partition copies still on the
node, the new owners that hold what they gain), for at most --timeout
(default 10m). If it gives up, the leave goes on in the background: run
leave again to watch it (it only waits), or 'quorumkv transfers' on the new
owners. The node keeps running as a coordinator (no data) until you stop it;
restarted on the same data directory it stays off the ring (start it on a
new, empty directory to rejoin).

Exit codes: 0 done; 2 bad usage (e.g. several addresses); 4 the handoff did
not finish within --timeout (it goes on in the background) or the node is
unreachable.`

const removeDescription = `
Asks the node at --addr to take member ID, which must be down, off the ring
for good: its partitions move to the others, which refill them from the
remaining replicas by anti-entropy. A member that is alive is refused: run
leave on it instead, so it hands its data over. A member the node saw
alive within its --remove-min-down (default 1m) is refused too, since a
crash and restart is not "down for good"; --force overrides that. The
node signs the removal and every member logs it with the admin's name
(--token). The removed member, if it
comes back on the same data directory, learns it was removed and stays off
the ring.

Exit codes: 0 removed; 3 no member ID; 2 ID is alive, was seen alive
recently, or is the node itself; 4
unreachable.`

func runLeave(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "leave", "[flags]", leaveDescription)
	every := fs.Duration("progress", 2*time.Second, "how often to ask for and print the progress")
	_, c, code := cf.open(e, args, 0, "leave takes no arguments (it acts on the node at --addr)")
	if c == nil {
		return code
	}
	defer c.Close()
	if *every <= 0 {
		return fail(e, exitBadInput, "--progress %s: want more than 0", *every)
	}
	// The node that answers is the node that leaves: with a list of
	// addresses, failover would make a different node leave when the
	// first is slow or down.
	if n := len(cf.addrs()); n != 1 {
		return fail(e, exitBadInput, "leave acts on the node it is sent to: --addr (or QUORUMKV_ADDR) names %d addresses %q; give only the address of the node that should leave", n, cf.addr)
	}
	wait := cf.timeoutOr(defaultLeaveWait)
	deadline := time.Now().Add(wait)
	last := ""
	for {
		// The leave is idempotent: each call (re)starts it and waits up to
		// one progress period for the handoff to end.
		err := c.Leave(e.ctx, client.Timeout(min(*every, max(time.Until(deadline), time.Millisecond))))
		if err == nil {
			fmt.Fprintln(e.stdout, "left the ring; partitions handed over")
			return exitOK
		}
		if !leaveGoesOn(e, err) {
			return cf.exitFor(e, err)
		}
		if p := leaveProgress(e, c); p != "" && p != last {
			fmt.Fprintln(e.stdout, p)
			last = p
		}
		if !time.Now().Before(deadline) {
			fmt.Fprintf(e.stderr, "quorumkv: gave up waiting after %s (--timeout); the node has left the ring and the handoff goes on in the background: "+
				"watch it with 'quorumkv leave --addr %s' again (it waits and shows the progress), 'quorumkv ring --addr %s' and 'quorumkv transfers' on the new owners\n",
				wait, cf.addr, cf.addr)
			return exitUnavailable
		}
	}
}

// defaultLeaveWait bounds how long leave waits for the handoff without
// --timeout.
const defaultLeaveWait = 10 * time.Minute

// leaveGoesOn reports whether err, the answer to one leave call, means
// the handoff is not done yet (the node answered 503, or the call's own
// timeout ended first), rather than a refusal or an unreachable node.
func leaveGoesOn(e *env, err error) bool {
	if e.ctx.Err() != nil {
		return false
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Status == http.StatusServiceUnavailable && strings.Contains(ae.Msg, "not handed over yet")
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// leaveProgress describes a leave in course from the leaving node's
// /cluster/ring: how many partition copies it still owns, and how many
// new owners hold what they gain ("" when the ring cannot be read).
func leaveProgress(e *env, c *client.Client) string {
	r, err := c.Ring(e.ctx, client.Timeout(5*time.Second))
	if err != nil {
		return ""
	}
	owned := 0
	for _, o := range r.Owners {
		if slices.Contains(o.Primaries[:min(r.N, len(o.Primaries))], r.Node) {
			owned++
		}
	}
	if r.Change == nil {
		if owned == 0 {
			return fmt.Sprintf("%s: off the ring; handing its last records over to the new owners", r.Node)
		}
		return fmt.Sprintf("%s: leaving; %d partition copies still on it, waiting for the cluster to plan the move", r.Node, owned)
	}
	gainers := make([]string, 0, len(r.Change.Pending))
	gains := 0
	for id, n := range r.Change.Pending {
		gainers = append(gainers, id)
		gains += n
	}
	slices.Sort(gainers)
	return fmt.Sprintf("%s: leaving; %d partition copies still on it; %d of %d new owners (%s) hold the %d copies they gain (ready: %s); per partition: quorumkv transfers --addr NEW-OWNER",
		r.Node, owned, len(r.Change.Ready), len(gainers), strings.Join(gainers, " "), gains, orDash(strings.Join(r.Change.Ready, " ")))
}

func runRemove(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "remove", "ID [flags]", removeDescription)
	force := fs.Bool("force", false, "remove even if the node saw the member alive within its --remove-min-down (default 1m)")
	pos, c, code := cf.open(e, args, 1, "remove takes one argument: the member's id")
	if c == nil {
		return code
	}
	defer c.Close()
	var opts []client.RequestOption
	if *force {
		opts = append(opts, client.Force())
	}
	if err := c.RemoveMember(e.ctx, pos[0], opts...); err != nil {
		return cf.exitFor(e, err)
	}
	fmt.Fprintf(e.stdout, "removed %s from the ring\n", pos[0])
	return exitOK
}
