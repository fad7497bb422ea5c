package main

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/client"
)

func init() {
	register(&command{Name: "leave", Order: 24, Summary: "take a node off the ring, handing its data over first", Run: runLeave})
	register(&command{Name: "remove", Order: 25, Summary: "take a member that is down for good off the ring", Run: runRemove})
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
leave on it instead, so it hands its data over. The removed member, if it
comes back on the same data directory, learns it was removed and stays off
the ring.

Exit codes: 0 removed; 3 no member ID; 2 ID is alive or the node itself; 4
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
	_, cf := newClientFlagSet(e, "remove", "ID [flags]", removeDescription)
	pos, c, code := cf.open(e, args, 1, "remove takes one argument: the member's id")
	if c == nil {
		return code
	}
	defer c.Close()
	if err := c.RemoveMember(e.ctx, pos[0]); err != nil {
		return cf.exitFor(e, err)
	}
	fmt.Fprintf(e.stdout, "removed %s from the ring\n", pos[0])
	return exitOK
}
