package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/quorumkv/quorumkv/client"
)

const repairDescription = `
Asks one node to compare its Merkle trees with the other replicas of every
partition it replicates (or only --partition P) and to repair what differs,
now, one exchange at a time; it answers when done. Anti-entropy also runs on
a schedule; this is for operators (after restoring a node, for instance) and
scripts.

Exit codes: 0 when every exchange ran; 4 when some could not (a replica was
down or unreachable: the others were still repaired) or the node is
quarantined; 2 for a bad partition or one the node does not replicate.`

// defaultRepairTimeout bounds a whole repair unless --timeout says
// otherwise: a repair of many differences is paced by the node's
// KeysPerSecond.
const defaultRepairTimeout = 10 * time.Minute

func runRepair(e *env, args []string) int {
	fs := newFlagSet(e, "repair", "[--partition P] [flags]", repairDescription)
	var cf clientFlags
	cf.register(e, fs)
	part := fs.String("partition", "", "repair only this `partition` (0 to Q-1; default: every partition the node replicates)")
	asJSON := fs.Bool("json", false, "print the node's whole answer as JSON")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return fail(e, exitBadInput, "repair takes no arguments (use --partition P)")
	}
	p := -1
	if *part != "" {
		v, err := strconv.Atoi(*part)
		if err != nil || v < 0 {
			return fail(e, exitBadInput, "partition %q: want a number from 0", *part)
		}
		p = v
	}
	c, err := cf.client()
	if err != nil {
		return cf.exitFor(e, err)
	}
	defer c.Close()
	rep, err := c.Repair(e.ctx, p, client.Timeout(cf.timeoutOr(defaultRepairTimeout)))
	if err != nil {
		return cf.exitFor(e, err)
	}
	if *asJSON {
		if _, err := e.stdout.Write(append(rep.Raw, '\n')); err != nil {
			return fail(e, exitInternal, "%v", err)
		}
	} else {
		printRepair(e, rep)
	}
	if rep.Failed > 0 {
		return fail(e, exitUnavailable, "%d of %d exchanges could not run", rep.Failed, rep.Exchanges)
	}
	return exitOK
}

func printRepair(e *env, rep *client.RepairReport) {
	what := fmt.Sprintf("%d partitions", rep.Partitions)
	if rep.Partitions == 1 && len(rep.Details) > 0 {
		what = fmt.Sprintf("partition %d", rep.Details[0].Partition)
	}
	fmt.Fprintf(e.stdout, "%s repaired %s in %.0f ms: %d exchanges (%d failed), %d keys compared, %d differing, %d written here, %d written at peers, %d bytes sent, %d received\n",
		rep.Node, what, rep.DurationMS, rep.Exchanges, rep.Failed, rep.KeysCompared, rep.KeysDiffering,
		rep.RepairedLocal, rep.RepairedRemote, rep.BytesSent, rep.BytesReceived)
	if len(rep.Details) == 0 {
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tPEER\tDIFFERING\tHERE\tPEER WROTE\tERROR\t")
	for _, d := range rep.Details {
		errText := d.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t\n", d.Partition, d.Peer, d.KeysDiffering, d.RepairedLocal, d.RepairedRemote, errText)
	}
	tw.Flush()
}
