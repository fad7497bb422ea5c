package e2e

import (
	"context"
	"testing"
	"time"
)

// Convergence deadline after the last fault heals: anti-entropy runs every
// 5 s per partition with --profile local, and hinted handoff starts as soon
// as a peer is seen alive; a minute leaves room for a loaded machine.
const dockerConvergeTimeout = 60 * time.Second

// TestDockerFaults runs five containers of the image, each binding 0.0.0.0
// with --advertise set to its host name, on a private network, and drives a
// set-union and a register workload through them from the host while it:
// disconnects one container from the network, splits the network into
// halves, pauses one container, kills one and restarts it, and replaces one
// with a new container on an empty volume. Afterwards every acknowledged
// set element is present, every register is at or past its last
// acknowledged value, and every key's replicas hold equal copies within
// dockerConvergeTimeout. Availability per phase is logged (go test -v).
func TestDockerFaults(t *testing.T) {
	skipWithoutDocker(t)
	began := time.Now()
	c := newDockerCluster(t, 5)
	n1, n2, n3, n4, n5 := c.byID("n1"), c.byID("n2"), c.byID("n3"), c.byID("n4"), c.byID("n5")

	tally := newPhaseTally()
	sets := &setWorkload{keys: 4, acked: map[string][]string{}}
	regs := &registerWorkload{acked: map[string]int{}}
	var loops []func(context.Context)
	for i := range 4 {
		loops = append(loops, func(ctx context.Context) { sets.run(ctx, i, c.nodes, tally) })
	}
	for i := range 3 {
		loops = append(loops, func(ctx context.Context) { regs.run(ctx, i, c.nodes, tally) })
	}
	stopLoad := startLoad(t, loops...)

	// hold keeps a phase going for d under load; healed waits until the
	// cluster is whole again and logs how long that took.
	hold := func(d time.Duration) { sleepCtx(t.Context(), d) }
	healed := func(what string) {
		t.Helper()
		took := c.waitHealthy(60*time.Second, "all ready and alive after "+what)
		t.Logf("%s: all 5 ready and alive %s after healing", what, took.Round(100*time.Millisecond))
	}

	tally.enter("no faults")
	hold(4 * time.Second)

	// fault runs one fault phase: inject it, hold it for d under load,
	// undo it (the tally's phase heal from then), wait until healed.
	fault := func(name string, d time.Duration, inject, undo func(), heal, what string) {
		t.Helper()
		tally.enter(name)
		inject()
		hold(d)
		undo()
		tally.enter(heal)
		healed(what)
	}
	fault("n2 disconnected from the network", 8*time.Second, func() { c.disconnect(n2) }, func() { c.reconnect(n2) },
		"heal after disconnect", "disconnect of n2")
	fault("split {n1,n2} | {n3,n4,n5}", 10*time.Second, func() { c.split([]*dockerNode{n1, n2}, []*dockerNode{n3, n4, n5}) }, c.heal,
		"heal after split", "split")
	fault("n3 paused", 8*time.Second, func() { c.docker("pause", n3.container) }, func() { c.docker("unpause", n3.container) },
		"heal after pause", "pause of n3")
	fault("n4 killed", 6*time.Second, func() { c.docker("kill", n4.container) }, func() { c.docker("start", n4.container) },
		"n4 restarting", "kill and restart of n4")

	tally.enter("n5 replaced, empty volume")
	c.replaceEmpty(n5)
	healed("replacement of n5")
	lastHeal := time.Now()
	tally.enter("after the last fault")
	hold(4 * time.Second)

	stopLoad()
	t.Logf("availability per phase (N=3, R=2, W=2; a failed op got 503 or no answer within 3 s):\n%s", tally.report("set", "register"))
	for _, bad := range append(sets.bad.list, regs.bad.list...) {
		t.Errorf("an answer no fault explains: %s", bad)
	}
	took := dockerCheckConverged(t, c.nodes, sets, regs, 3, dockerConvergeTimeout)
	t.Logf("every key's 3 replicas equal %s after the load stopped, %s after the last fault healed (deadline %s after the load stopped); whole test %s",
		took.Round(100*time.Millisecond), time.Since(lastHeal).Round(100*time.Millisecond), dockerConvergeTimeout, time.Since(began).Round(time.Second))
}
