package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quorumkv/quorumkv/client"
)

func init() {
	register(&command{Name: "leave", Order: 24, Summary: "take a node off the ring, handing its data over first", Run: runLeave})
	register(&command{Name: "remove", Order: 25, Summary: "take a member that is down for good off the ring", Run: runRemove})
	register(&command{Name: "transfers", Order: 26, Summary: "show a node's side of the ring change in course", Run: runTransfers})
}

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
	_, c, code := cf.open(e, args, 0, "transfers takes no arguments")
	if c == nil {
		return code
	}
	defer c.Close()
	t, err := c.Transfers(e.ctx, cfTimeout(cf)...)
	if err != nil {
		return cf.exitFor(e, err)
	}
	if *asJSON {
		return printJSON(e, t)
	}
	if t.Target == "" {
		fmt.Fprintf(e.stdout, "%s: no ring change in course (reads use %s)\n", t.Node, orDash(t.Committed))
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s: moving from %s to %s\n", t.Node, t.Committed, t.Target)
	state := "receiving"
	if t.Ready {
		state = "ready"
	}
	fmt.Fprintf(e.stdout, "pending owner of %d partition(s): %d received whole (%s)\n", t.Gains, t.Received, state)
	if t.Resumed > 0 {
		fmt.Fprintf(e.stdout, "resumed after a restart with %d partition(s) already received\n", t.Resumed)
	}
	th := t.Throttle
	fmt.Fprintf(e.stdout, "moved %s (%d keys), about %s left, at %s/s, ETA %s; throttle %s/s now (cap %s/s, floor %s/s), %d partition(s) at once\n",
		iec(float64(t.BytesDone)), t.KeysDone, iec(float64(t.BytesLeft)), iec(t.Rate), etaText(t.ETASeconds),
		iec(th.BytesPerSecond), iec(float64(th.MaxBytesPerSecond)), iec(float64(th.MinBytesPerSecond)), th.Partitions)
	if len(t.Moving) > 0 {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tFROM\tTO\tDONE\tLEFT\tKEYS LEFT\tRATE\tETA")
		for _, m := range t.Moving {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s/s\t%s\n", m.Partition, m.From, m.To, iec(float64(m.BytesDone)),
				iec(float64(m.BytesLeft)), m.KeysLeft, iec(m.Rate), etaText(m.ETASeconds))
		}
		tw.Flush()
	}
	if len(t.WaitingFor) > 0 {
		fmt.Fprintf(e.stdout, "waiting for old owners down but on the ring: %s (restart them, or remove them for good)\n", strings.Join(t.WaitingFor, ", "))
	}
	if len(t.Unaware) > 0 {
		fmt.Fprintf(e.stdout, "members not routing with the new assignment yet: %s\n", strings.Join(t.Unaware, ", "))
	}
	return exitOK
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
Asks the node at --addr to leave the ring. Its partitions move to the
remaining members: they fetch them by anti-entropy while the leaving node
hands its records over and drops them. The command returns when the handoff
is done. The node keeps running as a coordinator (no data) until you stop it;
restarted on the same data directory it stays off the ring (start it on a
new, empty directory to rejoin).

Exit codes: 0 done; 4 the handoff did not finish in time (it goes on in the
background) or the node is unreachable.`

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
	_, cf := newClientFlagSet(e, "leave", "[flags]", leaveDescription)
	_, c, code := cf.open(e, args, 0, "leave takes no arguments (it acts on the node at --addr)")
	if c == nil {
		return code
	}
	defer c.Close()
	if err := c.Leave(e.ctx, client.Timeout(cf.timeoutOr(10*time.Minute))); err != nil {
		return cf.exitFor(e, err)
	}
	fmt.Fprintln(e.stdout, "left the ring; partitions handed over")
	return exitOK
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
