package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumkv/quorumkv/internal/ratelog"
	"github.com/quorumkv/quorumkv/ringstate"
)

// PeerState is a peer's liveness as the failure detector sees it. The zero
// value is invalid.
type PeerState int

// Peer states, as in memberlist.
const (
	PeerAlive PeerState = iota + 1
	PeerSuspect
	PeerDead
	PeerLeft
)

func (s PeerState) String() string {
	switch s {
	case PeerAlive:
		return "alive"
	case PeerSuspect:
		return "suspect"
	case PeerDead:
		return "dead"
	case PeerLeft:
		return "left"
	}
	return "unknown"
}

// Up reports whether the state counts as alive (a suspect peer is still tried).
func (s PeerState) Up() bool { return s == PeerAlive || s == PeerSuspect }

// Peer is one member as the failure detector reports it.
type Peer struct {
	ID    string
	Addr  string // gossip address
	Meta  []byte // the peer's LocalMeta
	State PeerState
}

// Membership is the seam between the node and its gossip layer (memberlist in
// production, a scripted fake in nodetest). It reports liveness; ring
// membership is the node's own state, carried through the delegate.
type Membership interface {
	// Join contacts the given gossip addresses; it returns how many answered.
	Join(seeds []string) (int, error)
	// Broadcast queues msg for gossip to every peer (best effort; the
	// periodic state exchange repairs what is lost). It must not block.
	Broadcast(msg []byte)
	// Leave announces a graceful departure and waits up to timeout.
	Leave(timeout time.Duration) error
	// Shutdown stops gossip. Idempotent.
	Shutdown() error
}

// MembershipDelegate is what the gossip layer calls back into. Every method
// must be quick and must not block (memberlist calls them from its own
// goroutines); they copy what they keep.
type MembershipDelegate interface {
	// LocalMeta is this node's metadata (at most 512 bytes).
	LocalMeta() []byte
	// LocalState is the node's full ring state, sent on push/pull.
	LocalState() []byte
	// MergeRemoteState merges a peer's LocalState or broadcast.
	MergeRemoteState(buf []byte)
	// PeerChanged reports a peer seen, updated, suspected, dead or left.
	PeerChanged(p Peer)
}

// gossipDelegate is the node as its gossip layer sees it, so that the
// callbacks are not on *Node's exported surface.
type gossipDelegate struct{ n *Node }

func (g gossipDelegate) LocalMeta() []byte           { return g.n.localMeta() }
func (g gossipDelegate) LocalState() []byte          { return g.n.localState() }
func (g gossipDelegate) MergeRemoteState(buf []byte) { g.n.mergeRemoteState(buf) }
func (g gossipDelegate) PeerChanged(p Peer)          { g.n.peerChanged(p) }

// memberlistMembership is Membership over hashicorp/memberlist.
type memberlistMembership struct {
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	secrets *secretWatch
	del     *mlDelegate
	once    sync.Once
	err     error
}

type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// mlDelegate adapts a MembershipDelegate to memberlist's two delegate
// interfaces.
type mlDelegate struct {
	d     MembershipDelegate
	queue *memberlist.TransmitLimitedQueue

	// memberlist reports a graceful leave and a death with the same
	// NotifyLeave (and the node it passes does not say which), so a member
	// that leaves on purpose first tells every other one directly
	// (leavingNotice); they list it as left instead of dead.
	mu      sync.Mutex
	leaving map[string]bool // members that sent a leaving notice
	gone    map[string]Peer // members reported dead, as reported
}

// leavingNotice prefixes a user message that says its sender is leaving
// gossip on purpose; the sender's name follows. Ring state messages are
// msgpack maps and never start with 0x00.
const leavingNotice = "\x00quorumkv-leaving\x00"

// maxGone bounds the dead members an mlDelegate remembers.
const maxGone = 4096

func (m *mlDelegate) NodeMeta(limit int) []byte {
	b := m.d.LocalMeta()
	if len(b) > limit {
		return nil
	}
	return b
}

func (m *mlDelegate) NotifyMsg(b []byte) {
	name, ok := strings.CutPrefix(string(b), leavingNotice)
	if !ok {
		m.d.MergeRemoteState(b)
		return
	}
	if !ringstate.ValidID(name) {
		return
	}
	m.mu.Lock()
	if m.leaving == nil {
		m.leaving = map[string]bool{}
	}
	if len(m.leaving) < maxGone {
		m.leaving[name] = true
	}
	p, wasGone := m.gone[name]
	m.mu.Unlock()
	if wasGone && p.State == PeerDead {
		// The notice came after the leave itself.
		p.State = PeerLeft
		m.remember(p)
		m.d.PeerChanged(p)
	}
}

func (m *mlDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return m.queue.GetBroadcasts(overhead, limit)
}
func (m *mlDelegate) LocalState(bool) []byte            { return m.d.LocalState() }
func (m *mlDelegate) MergeRemoteState(b []byte, _ bool) { m.d.MergeRemoteState(b) }

// memberlist passes event delegates a copy of the node whose State field
// is not kept current (its own state lives in a field that shadows it), so
// the state is taken from the kind of event instead: join and update mean
// alive, leave means dead, or left after a leaving notice. memberlist
// sends no event for suspicion.
func (m *mlDelegate) NotifyJoin(n *memberlist.Node)   { m.alive(n) }
func (m *mlDelegate) NotifyUpdate(n *memberlist.Node) { m.alive(n) }

func (m *mlDelegate) NotifyLeave(n *memberlist.Node) {
	p := peerOf(n, PeerDead)
	m.mu.Lock()
	if m.leaving[n.Name] {
		p.State = PeerLeft
	}
	m.mu.Unlock()
	m.remember(p)
	m.d.PeerChanged(p)
}

func (m *mlDelegate) alive(n *memberlist.Node) {
	m.mu.Lock()
	delete(m.leaving, n.Name)
	delete(m.gone, n.Name)
	m.mu.Unlock()
	m.d.PeerChanged(peerOf(n, PeerAlive))
}

// remember keeps p, reported dead or left, for a late leaving notice.
func (m *mlDelegate) remember(p Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone == nil {
		m.gone = map[string]Peer{}
	}
	if _, ok := m.gone[p.ID]; ok || len(m.gone) < maxGone {
		m.gone[p.ID] = p
	}
}

func peerOf(n *memberlist.Node, st PeerState) Peer {
	return Peer{ID: n.Name, Addr: n.Address(), Meta: append([]byte(nil), n.Meta...), State: st}
}

// newMemberlist starts memberlist for cfg with d as its delegate.
func newMemberlist(cfg Config, d MembershipDelegate, logger *slog.Logger, lim *ratelog.Limiter) (Membership, error) {
	var mc memberlist.Config
	if cfg.Gossip != nil {
		mc = *cfg.Gossip
	} else {
		mc = *memberlist.DefaultLANConfig()
	}
	host, portStr, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("gossip address %q: bad port", cfg.GossipAddr)
	}
	if port == 0 {
		// memberlist binds TCP and UDP to the same port; find one free for
		// both before handing it over.
		port, err = freeTCPUDPPort(host)
		if err != nil {
			return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
		}
	}
	mc.Name = cfg.NodeID
	mc.BindAddr = host
	mc.BindPort = port
	if mc.AdvertiseAddr, err = gossipAdvertiseIP(cfg, host); err != nil {
		return nil, err
	}
	mc.AdvertisePort = port
	if cfg.Secret != "" {
		k := sha256.Sum256([]byte("quorumkv gossip key\x00" + cfg.Secret))
		mc.SecretKey = k[:]
	}
	secrets := newSecretWatch(logger.With("component", "gossip"), cfg.Now)
	mc.Logger = log.New(slogWriter{l: logger.With("component", "memberlist"), secrets: secrets, lim: lim}, "", 0)
	mc.LogOutput = nil
	q := &memberlist.TransmitLimitedQueue{RetransmitMult: mc.RetransmitMult}
	md := &mlDelegate{d: d, queue: q}
	mc.Delegate = md
	mc.Events = md
	ml, err := memberlist.Create(&mc)
	if err != nil {
		return nil, startErr("gossip", cfg.GossipAddr, err)
	}
	q.NumNodes = ml.NumMembers
	return &memberlistMembership{ml: ml, queue: q, secrets: secrets, del: md}, nil
}

// Join contacts seeds; a failure only because the seeds use another
// cluster secret wraps ErrSecretMismatch, and is remembered for /healthz.
func (m *memberlistMembership) Join(seeds []string) (int, error) {
	n, err := m.ml.Join(seeds)
	return n, m.secrets.JoinResult(seeds, n, err)
}

// secretStatus reports what gossip saw of peers with another secret.
func (m *memberlistMembership) secretStatus() secretStatus { return m.secrets.Status() }
func (m *memberlistMembership) Broadcast(msg []byte) {
	m.queue.QueueBroadcast(broadcast(append([]byte(nil), msg...)))
}

// Leave first tells every other member directly that this node is
// leaving on purpose (so they list it as left, not dead), waiting up to
// half of timeout for them, then leaves gossip.
func (m *memberlistMembership) Leave(timeout time.Duration) error {
	self := m.ml.LocalNode().Name
	notice := []byte(leavingNotice + self)
	var wg sync.WaitGroup
	for _, peer := range m.ml.Members() {
		if peer.Name == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.ml.SendReliable(peer, notice) // best effort: without it, peers say dead
		}()
	}
	sent := make(chan struct{})
	go func() {
		wg.Wait()
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(timeout / 2):
		// A notice still unsent ends by memberlist's TCPTimeout, or fails
		// at once once Shutdown has run.
	}
	return m.ml.Leave(timeout)
}
func (m *memberlistMembership) Shutdown() error {
	m.once.Do(func() { m.err = m.ml.Shutdown() })
	return m.err
}

// LocalAddr is the bound gossip address (useful with port 0).
func (m *memberlistMembership) LocalAddr() string {
	n := m.ml.LocalNode()
	return n.Address()
}

// freeTCPUDPPort finds a port free for both TCP and UDP on host.
func freeTCPUDPPort(host string) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for both tcp and udp")
}

// slogWriter turns memberlist's log lines ("[DEBUG] memberlist: ...") into
// slog records at the matching level. Lines that show a peer with another
// cluster secret go to secrets instead, which logs them rate-limited.
// Other lines at warn and above (junk packets, failed pushes: an attacker
// can provoke one per packet) go through lim, one per kind and host every
// 10 s with a count of those held back; nil lim logs each.
type slogWriter struct {
	l       *slog.Logger
	secrets *secretWatch
	lim     *ratelog.Limiter
}

func (w slogWriter) Write(p []byte) (int, error) {
	s := string(p)
	if w.secrets != nil && w.secrets.LogLine(s) {
		return len(p), nil
	}
	s = strings.TrimRight(s, "\r\n")
	level := slog.LevelInfo
	for _, l := range []struct {
		tag string
		lv  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if len(s) >= len(l.tag) && s[:len(l.tag)] == l.tag {
			level = l.lv
			s = s[len(l.tag):]
			break
		}
	}
	if w.lim != nil && level >= slog.LevelWarn {
		w.lim.LogLine(level, trimSpace(s), "component", "memberlist")
		return len(p), nil
	}
	w.l.Log(context.Background(), level, trimSpace(s))
	return len(p), nil
}

func trimSpace(s string) string { return strings.TrimLeft(s, " ") }

var _ io.Writer = slogWriter{}
