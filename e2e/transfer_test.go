package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/devcluster"
)

// transfersOf is agent a's /cluster/transfers (ok false on error).
func transfersOf(a *agent) (api.Transfers, bool) {
	var t api.Transfers
	status, _, b := do(a.t, "GET", a.url("/cluster/transfers"), nil, nil)
	return t, status == 200 && json.Unmarshal(b, &t) == nil
}

// launchFirst prepares n agents, launches the first k (each joining the
// first) and waits until their rings settle on them; the others are left
// to launch.
func launchFirst(t *testing.T, n, k int, adjust ...func(*devcluster.Config)) []*agent {
	t.Helper()
	c := newCluster(t, n, adjust...)
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	as := agentsOf(t, c)
	as[0].launch()
	for _, a := range as[1:k] {
		a.launch(as[0].gossip)
	}
	waitRingSettled(t, as[:k], 60*time.Second)
	return as
}

// Issue 15, must hold: a transfer interrupted by killing the sender, then
// the receiver, resumes and completes. Three agents hold 6 MiB; a fourth
// joins and pulls its partitions at a throttle of 128 KiB/s, one partition
// at a time. Killed midway, the sender blocks the transfer (the joiner
// waits for it: it may hold writes nobody else has) until it is back; then
// the receiver is killed, and restarted on its data directory it resumes
// from its persisted cursor (the partitions it had received are not pulled
// again) and completes: the ring change commits and every key reads back
// through it.
func TestTransferResumesAfterSenderAndReceiverKills(t *testing.T) {
	as := launchFirst(t, 4, 3, withArgs("--partitions", "64", "--transfer-rate", "128KiB", "--transfer-min-rate", "128KiB", "--transfer-partitions", "1"))

	const keys, size = 1536, 4 << 10
	value := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, size) }
	maybe := putAll(t, keys, 8, func(i int) string { return as[i%3].url(fmt.Sprintf("/kv/xfer%d?w=3", i)) }, value)

	n4 := as[3]
	n4.launch(as[0].gossip)
	var moving api.TransferPartition
	waitFor(t, 60*time.Second, "n4 pulling a partition", func() bool {
		tr, ok := transfersOf(n4)
		if ok && len(tr.Moving) > 0 && tr.Moving[0].BytesDone > 0 {
			moving = tr.Moving[0]
			return true
		}
		return false
	}, n4)
	sender := as[slices.IndexFunc(as, func(a *agent) bool { return a.id == moving.From })]
	t.Logf("n4 pulls partition %d from %s (%d bytes done)", moving.Partition, sender.id, moving.BytesDone)
	if code, out, _ := cli(t, "", "transfers", "--addr", n4.http); code != 0 || !strings.Contains(out, "PARTITION") {
		t.Errorf("quorumkv transfers: exit %d, no partition listed:\n%s", code, out)
	}

	// Kill the sender: the transfer waits for it and does not complete.
	sender.kill()
	waitFor(t, 30*time.Second, "n4's transfer waiting for "+sender.id, func() bool {
		tr, ok := transfersOf(n4)
		return ok && slices.Equal(tr.WaitingFor, []string{sender.id}) && !tr.Ready
	}, n4)
	before, _ := transfersOf(n4)
	// launch, not start: start waits for settled rings, which needs the
	// transfer to complete.
	sender.launch(n4.gossip)
	waitFor(t, 60*time.Second, "n4's transfer going on after "+sender.id+" is back", func() bool {
		tr, ok := transfersOf(n4)
		return ok && len(tr.WaitingFor) == 0 && tr.Received > before.Received
	}, n4)

	// Kill the receiver midway; it resumes from its cursor.
	mid, ok := transfersOf(n4)
	if !ok || mid.Ready || mid.Received == 0 || mid.Received >= mid.Gains {
		t.Fatalf("n4 before its kill: %+v; want some but not all partitions received", mid)
	}
	n4.kill()
	n4.launch(as[slices.IndexFunc(as, func(a *agent) bool { return a != n4 && a != sender })].gossip)
	var resumed api.Transfers
	waitFor(t, 30*time.Second, "n4 resuming its transfer from its cursor", func() bool {
		tr, ok := transfersOf(n4)
		resumed = tr
		return ok && (tr.Resumed > 0 || tr.Ready)
	}, n4)
	if resumed.Target != mid.Target || resumed.Resumed < mid.Received {
		t.Fatalf("n4 after its restart: target %s resumed with %d partitions; before the kill target %s with %d received",
			resumed.Target, resumed.Resumed, mid.Target, mid.Received)
	}
	t.Logf("n4 resumed with %d of %d partitions received, %d bytes moved", resumed.Resumed, resumed.Gains, resumed.BytesDone)

	waitRingSettled(t, as, 180*time.Second)
	if err := parallel(keys, 8, func(i int) error {
		status, _, b := do(t, "GET", n4.url(fmt.Sprintf("/kv/xfer%d?r=3", i)), nil, nil)
		if status == 404 && maybe.has(i) {
			return nil
		}
		if status != 200 || !bytes.Equal(b, value(i)) {
			return fmt.Errorf("xfer%d through n4 at r=3: %d, %d bytes", i, status, len(b))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
