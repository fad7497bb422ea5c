package node

import (
	"errors"
	"log/slog"
	"time"
)

// errOnlySelf explains a join whose only answer came from this node: a
// seed name (a headless service, a shared alias) that resolves to this
// node too, before the others are in DNS.
var errOnlySelf = errors.New("only this node answered: the seeds resolve to no other member yet")

// joinLoop contacts the Join peers until another member answers, so an
// agent started before its seeds joins when one appears. Knowing some other
// member is not enough: two agents whose seeds were not up yet could find
// each other and form a second cluster, which memberlist never merges by
// itself. Nor is an answer from this node itself: a seed name shared by
// every member (a Kubernetes headless service) resolves to this node too.
//
// Seeds are passed to the gossip layer as given, never resolved here:
// memberlist resolves names on every Join and tries every address a name
// has, so a seed that moves to a new address (a rescheduled pod) is found
// there on the next attempt.
//
// Once joined, the loop keeps trying to reach ring members that gossip
// holds dead (as Serf's reconnect does), so a cluster split by a long
// partition, or a member restarted while others thought it dead, comes back
// together; their advertised gossip addresses may be names, resolved anew
// each time. And it joins the seeds again now and then, so that clusters
// formed apart from the same seeds (members that started together, each
// seeing only part of a headless service in DNS) merge.
func (n *Node) joinLoop() {
	t := n.clk.NewTimer(0)
	defer t.Stop()
	attempt := 0
	reconnectEvery := max(5*time.Second, 10*n.cfg.JoinRetry)
	seedsEvery := max(time.Minute, 30*n.cfg.JoinRetry)
	nextReconnect := n.clk.Now().Add(reconnectEvery)
	nextSeeds := n.clk.Now().Add(seedsEvery)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C():
		}
		now := n.clk.Now()
		switch {
		case !n.joined.Load():
			cnt, err := n.ml.Join(n.cfg.Join)
			attempt++
			if cnt > 0 && n.liveOthers() > 0 {
				n.log.Info("joined cluster", "contacted", cnt, "seeds", n.cfg.Join)
				if n.rebuildAfterJoin() {
					// No broadcast carries an assignment (too big): exchange states now, so that
					// members that founded at once agree on the newest before a push-pull would.
					_, _ = n.ml.Join(n.memberGossipAddrs(true))
				}
				break
			}
			if cnt > 0 {
				err = errOnlySelf
			}
			lvl := slog.LevelDebug
			if attempt == 1 || attempt%10 == 0 {
				lvl = slog.LevelWarn
			}
			n.log.Log(n.ctx, lvl, "join: no seed answered yet, retrying", "seeds", n.cfg.Join, "attempt", attempt, "err", err)
		case len(n.cfg.Join) > 0 && now.After(nextSeeds):
			nextSeeds = now.Add(seedsEvery)
			if cnt, err := n.ml.Join(n.cfg.Join); cnt == 0 {
				n.log.Debug("rejoin seeds: none answered", "seeds", n.cfg.Join, "err", err)
			}
		case now.After(nextReconnect):
			nextReconnect = now.Add(reconnectEvery)
			if addrs := n.memberGossipAddrs(false); len(addrs) > 0 {
				if cnt, _ := n.ml.Join(addrs); cnt > 0 {
					n.log.Info("reconnected to members gossip held dead", "contacted", cnt)
				}
			}
		}
		t.Reset(n.cfg.JoinRetry)
	}
}

// Joined reports whether this node has joined a cluster: it has no seeds
// (it is a cluster's first member), or a seed other than itself answered.
// It stays true once set, even if every peer dies later.
func (n *Node) Joined() bool { return n.joined.Load() }

// memberGossipAddrs lists the gossip addresses of the other ring members
// that gossip sees alive (or suspect), or of those it does not.
func (n *Node) memberGossipAddrs(alive bool) (out []string) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for id, r := range n.state.Members {
		p, ok := n.peers[id]
		if id != n.cfg.NodeID && !r.Left && r.Gossip != "" && alive == (ok && p.State.Up()) {
			out = append(out, r.Gossip)
		}
	}
	return out
}

// rebuildAfterJoin marks this node joined and re-evaluates the ring:
// members of a new claim cluster that found no assignment among them make
// the first one. It reports whether this node made it.
func (n *Node) rebuildAfterJoin() (founded bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	had := len(n.state.Assign) > 0
	n.joined.Store(true) // under mu: no rebuild founds between had and here
	if err := n.rebuildRingLocked(); err != nil {
		n.log.Error("rebuild ring", "err", err)
	}
	n.schedulePersist()
	return !had && len(n.state.Assign) > 0
}
