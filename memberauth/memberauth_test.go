package memberauth

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// seeded returns a deterministic random source for identities.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

func identity(t testing.TB, id string, seed uint64) Identity {
	t.Helper()
	i, err := NewIdentity(id, seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func sign(t testing.TB, i Identity, r Record) Record {
	t.Helper()
	s, err := i.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// state is a node's records, as a Lookup.
type state map[string]Record

func (s state) lookup(id string) (Record, bool) { r, ok := s[id]; return r, ok }

// member is an honest member of the model cluster.
type member struct {
	id    Identity
	inc   uint64
	addr  string
	state state
	pol   Policy
}

func newMember(t testing.TB, name string, seed uint64) *member {
	m := &member{id: identity(t, name, seed), inc: seed*1000 + 1, addr: "10.0.0." + fmt.Sprint(seed) + ":7100", state: state{}}
	m.state[name] = sign(t, m.id, Record{ID: name, RPC: m.addr, Version: 1, Incarnation: m.inc})
	return m
}

// newer is node's version order (node/clusterstate.go).
func newer(a, b Record) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	if a.Left != b.Left {
		return a.Left
	}
	return fmt.Sprint(a.Incarnation, a.RPC, a.HTTP, a.RESP, a.Gossip) > fmt.Sprint(b.Incarnation, b.RPC, b.HTTP, b.RESP, b.Gossip)
}

// merge is node's mergeState with Filter in front: it returns the
// rejections.
func (m *member) merge(in map[string]Record) []Rejected {
	in2 := map[string]Record{}
	for id, r := range in {
		if id != m.id.ID() { // a member's own record is its own (node's rule)
			in2[id] = r
		}
	}
	ok, bad := Filter(in2, m.state.lookup, m.pol)
	for _, r := range ok {
		if cur, have := m.state[r.ID]; !have || newer(r, cur) {
			m.state[r.ID] = r
		}
	}
	return bad
}

func gossipAll(ms ...*member) {
	for range 2 {
		for _, a := range ms {
			for _, b := range ms {
				b.merge(a.state)
			}
		}
	}
}

// The attack of the issue: a rogue member repoints n3's RPC address to
// itself. Whatever it signs, n1 and n2 keep n3's own record; the version
// cannot be pushed past MaxVersion to wrap, and n3's next record (after a
// restart) is still accepted.
func TestRogueRecordForAnotherMemberIsRejected(t *testing.T) {
	n1, n2, n3 := newMember(t, "n1", 1), newMember(t, "n2", 2), newMember(t, "n3", 3)
	rogue := newMember(t, "rogue", 66)
	gossipAll(n1, n2, n3, rogue) // the rogue is a member: its own record is pinned everywhere
	real3 := n3.state["n3"]

	hijack := Record{ID: "n3", RPC: rogue.addr, HTTP: rogue.addr, Version: real3.Version + 1000, Incarnation: real3.Incarnation}
	// (a) Signed by the rogue as n3's own record, with the rogue's key.
	a := hijack
	a.Key = rogue.id.Public()
	a = signWith(rogue.id, a)
	// (b) Carrying n3's key, signed with the rogue's.
	b := hijack
	b.Key = real3.Key
	b = signWith(rogue.id, b)
	// (c) Dressed as a removal by the rogue, but carrying addresses.
	c := hijack
	c.Key, c.Left, c.Signer = real3.Key, true, "rogue"
	c = signWith(rogue.id, c)
	// (d) n3's own genuine record replayed with the version set to wrap
	// (the signature no longer matches) and (e) re-signed by the rogue.
	d := real3
	d.Version = math.MaxUint64
	e := signWith(rogue.id, d)
	// (f) A record of n3 for a new incarnation under the rogue's key: a
	// "replaced disk" claim.
	f := hijack
	f.Incarnation++
	f.Key = rogue.id.Public()
	f = signWith(rogue.id, f)

	for name, tc := range map[string]struct {
		r    Record
		want error
	}{
		"rogue's key":            {a, ErrKeyMismatch},
		"n3's key, rogue's sig":  {b, ErrBadSignature},
		"removal with addresses": {c, ErrMalformed},
		"wrapping version":       {d, ErrMalformed},
		"wrapping, re-signed":    {e, ErrMalformed},
		"new incarnation claim":  {f, ErrKeyMismatch},
	} {
		for _, m := range []*member{n1, n2} {
			bad := m.merge(map[string]Record{"n3": tc.r})
			if len(bad) != 1 || !errors.Is(bad[0].Err, tc.want) {
				t.Errorf("%s at %s: rejections %v, want %v", name, m.id.ID(), bad, tc.want)
			}
			if got := m.state["n3"]; got != real3 {
				t.Fatalf("%s: %s's record of n3 changed to RPC %s", name, m.id.ID(), got.RPC)
			}
		}
	}
	// Gossip carries the attempts nowhere: the rogue's state is not n3's.
	rogue.state["n3"] = a
	gossipAll(n1, n2, n3)
	n1.merge(rogue.state)
	if n1.state["n3"].RPC != n3.addr {
		t.Fatal("hijack spread through gossip")
	}

	// n3 restarts: it bumps its own version and signs; everyone takes it.
	next := real3
	next.Version = NextVersion(next.Version)
	n3.state["n3"] = sign(t, n3.id, next)
	gossipAll(n1, n2, n3)
	if n1.state["n3"].Version != next.Version || n2.state["n3"].Version != next.Version {
		t.Fatal("n3's own newer record not taken")
	}
}

// signWith signs r with i's key whatever r claims (for forgeries).
func signWith(i Identity, r Record) Record {
	msg := SigningBytes(r)
	copy(r.Sig[:], signRaw(i, msg))
	return r
}

func TestVersionsSaturate(t *testing.T) {
	if NextVersion(MaxVersion) != MaxVersion || NextVersion(MaxVersion-1) != MaxVersion || NextVersion(math.MaxUint64) != MaxVersion {
		t.Fatal("NextVersion passes MaxVersion")
	}
	if LeaveVersion(MaxVersion) != MaxVersion || LeaveVersion(MaxVersion-LeaveJump) != MaxVersion || LeaveVersion(math.MaxUint64) != MaxVersion {
		t.Fatal("LeaveVersion passes MaxVersion")
	}
	if NextVersion(5) != 6 || LeaveVersion(5) != 5+LeaveJump {
		t.Fatal("ordinary arithmetic")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		v := r.Uint64() >> r.IntN(64)
		for _, f := range []func(uint64) uint64{NextVersion, LeaveVersion} {
			w := f(v)
			if w > MaxVersion || (v <= MaxVersion && w <= v && v != MaxVersion) {
				t.Fatalf("%d -> %d", v, w)
			}
		}
	}
	// A member at the top stays valid and keeps its record.
	i := identity(t, "n1", 1)
	top := sign(t, i, Record{ID: "n1", Version: NextVersion(MaxVersion)})
	if err := Verify(top, state{}.lookup, Policy{}); err != nil {
		t.Fatalf("record at MaxVersion: %v", err)
	}
}

// Every field is covered by the signature.
func TestSignatureCoversEveryField(t *testing.T) {
	i := identity(t, "n1", 1)
	base := sign(t, i, Record{ID: "n1", RPC: "a:1", HTTP: "a:2", RESP: "a:3", Gossip: "a:4", Version: 7, Incarnation: 9})
	other := identity(t, "n9", 9)
	muts := map[string]func(*Record){
		"id": func(r *Record) { r.ID = "n2" }, "rpc": func(r *Record) { r.RPC = "b:1" },
		"http": func(r *Record) { r.HTTP = "b:2" }, "resp": func(r *Record) { r.RESP = "" },
		"gossip": func(r *Record) { r.Gossip = "b:4" }, "version": func(r *Record) { r.Version++ },
		"incarnation": func(r *Record) { r.Incarnation++ }, "left": func(r *Record) { r.Left = true },
		"key": func(r *Record) { r.Key = other.Public() },
		// Moving bytes between adjacent strings must not keep the encoding.
		"boundary": func(r *Record) { r.RPC, r.HTTP = "a:1a", ":2" },
	}
	for name, mut := range muts {
		r := base
		mut(&r)
		if err := Verify(r, state{}.lookup, Policy{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v, want ErrBadSignature", name, err)
		}
	}
	// Removal fields, on a removal.
	n2 := identity(t, "n2", 2)
	st := state{"n1": base, "n2": sign(t, n2, Record{ID: "n2", Version: 1})}
	rm, err := n2.SignRemoval(base, "ops", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(rm, st.lookup, Policy{}); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Record){
		"principal": func(r *Record) { r.Principal = "eve" }, "forced": func(r *Record) { r.Forced = true },
	} {
		r := rm
		mut(&r)
		if err := Verify(r, st.lookup, Policy{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
}

// A member back on a new data directory: refused while its old
// incarnation is on the ring (trust on first use), accepted once an admin
// removed it, or at once when gossip is authenticated by the secret.
func TestRekey(t *testing.T) {
	n1, n2, n3 := newMember(t, "n1", 1), newMember(t, "n2", 2), newMember(t, "n3", 3)
	gossipAll(n1, n2, n3)
	wiped := identity(t, "n3", 33)
	fresh := sign(t, wiped, Record{ID: "n3", RPC: "10.0.0.33:7100", Version: NextVersion(n3.state["n3"].Version), Incarnation: 3333})

	if err := Verify(fresh, n1.state.lookup, Policy{}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("new key while the old incarnation is on the ring: %v", err)
	}
	if err := Verify(fresh, n1.state.lookup, Policy{RekeyNewIncarnation: true}); err != nil {
		t.Fatalf("new incarnation with the secret's policy: %v", err)
	}
	sameInc := fresh
	sameInc.Incarnation = n3.inc
	sameInc = sign(t, wiped, sameInc)
	if err := Verify(sameInc, n1.state.lookup, Policy{RekeyNewIncarnation: true}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("new key for the same incarnation: %v", err)
	}

	// The operator removes n3 through n1; n2 learns it, then takes the
	// new incarnation, which outbids the tombstone.
	rm, err := n1.id.SignRemoval(n1.state["n3"], "ops", true)
	if err != nil {
		t.Fatal(err)
	}
	n1.state["n3"] = rm
	gossipAll(n1, n2)
	if !n2.state["n3"].Left || n2.state["n3"].Signer != "n1" || n2.state["n3"].Principal != "ops" {
		t.Fatalf("n2's record of n3 after the removal: %+v", n2.state["n3"])
	}
	fresh.Version = NextVersion(rm.Version)
	fresh = sign(t, wiped, fresh)
	if bad := n2.merge(map[string]Record{"n3": fresh}); len(bad) != 0 {
		t.Fatalf("new incarnation after removal: %v", bad)
	}
	if n2.state["n3"].Key != wiped.Public() {
		t.Fatal("not re-pinned")
	}
	// The old incarnation's records are now refused.
	old := n3.state["n3"]
	old.Version = NextVersion(fresh.Version)
	old = sign(t, n3.id, old)
	if err := Verify(old, n2.state.lookup, Policy{}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("old incarnation after re-key: %v", err)
	}
}

func TestRemovals(t *testing.T) {
	n1, n2, n3 := newMember(t, "n1", 1), newMember(t, "n2", 2), newMember(t, "n3", 3)
	gossipAll(n1, n2, n3)
	st := n2.state
	rm, err := n1.id.SignRemoval(st["n3"], "ops", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(rm, st.lookup, Policy{}); err != nil {
		t.Fatalf("genuine removal: %v", err)
	}
	// The removed member re-signs its own tombstone (node's rule); it is
	// accepted and wins the tie (it keeps its addresses).
	own := st["n3"]
	own.Left, own.Version = true, rm.Version
	own = sign(t, n3.id, own)
	if err := Verify(own, state{"n3": rm}.lookup, Policy{}); err != nil || !newer(own, rm) {
		t.Fatalf("own tombstone: %v", err)
	}

	// A removed member (a rogue one, say) cannot put its incarnation back.
	back := st["n3"]
	back.Version = NextVersion(rm.Version)
	back = sign(t, n3.id, back)
	if err := Verify(back, state{"n1": st["n1"], "n3": rm}.lookup, Policy{RekeyNewIncarnation: true}); !errors.Is(err, ErrRevived) {
		t.Fatalf("removed incarnation back on the ring: %v", err)
	}

	left := sign(t, n1.id, Record{ID: "n1", Version: LeaveVersion(st["n1"].Version), Incarnation: n1.inc, Left: true})
	stale := st["n3"]
	stale.Incarnation++
	tests := map[string]struct {
		r     Record
		state state
	}{
		"unknown member":     {rm, state{"n1": st["n1"]}},
		"unknown signer":     {rm, state{"n3": st["n3"]}},
		"signer left":        {rm, state{"n1": left, "n3": st["n3"]}},
		"other incarnation":  {rm, state{"n1": st["n1"], "n3": stale}},
		"signed by another":  {withSigner(signWith(n2.id, withSigner(rm, "n1")), "n1"), st},
		"two leave steps up": {resign(n1.id, rm, func(r *Record) { r.Version = LeaveVersion(LeaveVersion(st["n3"].Version)) + 1 }), st},
	}
	for name, tc := range tests {
		if err := Verify(tc.r, tc.state.lookup, Policy{}); !errors.Is(err, ErrUnauthorizedRemoval) && !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := n1.id.SignRemoval(st["n1"], "ops", false); err == nil {
		t.Error("a member removed itself")
	}
	if _, err := n1.id.SignRemoval(rm, "ops", false); err == nil {
		t.Error("removed a member already off the ring")
	}
	if _, err := n1.id.SignRemoval(Record{ID: "x"}, "ops", false); err == nil {
		t.Error("removed an unsigned record")
	}
}

func withSigner(r Record, s string) Record { r.Signer = s; return r }

func resign(i Identity, r Record, mut func(*Record)) Record {
	mut(&r)
	return signWith(i, r)
}

// A removal signed by a member whose record first arrives in the same
// gossiped state is accepted in that one exchange.
func TestFilterTwoPasses(t *testing.T) {
	n1, n3 := newMember(t, "n1", 1), newMember(t, "n3", 3)
	newcomer := &member{id: identity(t, "n4", 4), state: state{"n3": n3.state["n3"]}}
	rm, err := n1.id.SignRemoval(n3.state["n3"], "ops", false)
	if err != nil {
		t.Fatal(err)
	}
	ok, bad := Filter(map[string]Record{"n1": n1.state["n1"], "n3": rm, "bogus": n1.state["n1"]}, newcomer.state.lookup, Policy{})
	if len(ok) != 2 || ok[0].ID != "n1" || ok[1] != rm {
		t.Fatalf("accepted %v, rejected %v", ok, bad)
	}
	if len(bad) != 1 || !errors.Is(bad[0].Err, ErrMalformed) {
		t.Fatalf("record filed under another id: %v", bad)
	}
}

func TestIdentity(t *testing.T) {
	i := identity(t, "n1", 1)
	b, err := i.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	j, err := ParseIdentity("n1", b)
	if err != nil || j.Public() != i.Public() || j.ID() != "n1" {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, b[1:], append([]byte{9}, b[1:]...), append(b, 0)} {
		if _, err := ParseIdentity("n1", bad); err == nil {
			t.Errorf("ParseIdentity(%x) accepted", bad)
		}
	}
	if _, err := ParseIdentity("", b); err == nil {
		t.Error("empty id")
	}
	if _, err := NewIdentity(strings.Repeat("n", MaxIDLen+1), nil); err == nil {
		t.Error("long id")
	}
	if _, err := NewIdentity("n1", strings.NewReader("short")); err == nil {
		t.Error("short random source")
	}
	if _, err := (Identity{}).MarshalBinary(); err == nil {
		t.Error("zero identity marshalled")
	}
	if _, err := i.Sign(Record{ID: "n2"}); err == nil {
		t.Error("signed another member's record as its own")
	}
	if _, err := i.Sign(Record{ID: "n1", RPC: strings.Repeat("a", MaxAddrLen+1)}); err == nil {
		t.Error("signed an out-of-bounds record")
	}
}

func TestBounds(t *testing.T) {
	i := identity(t, "n1", 1)
	good := sign(t, i, Record{ID: "n1", Version: 1})
	for name, mut := range map[string]func(*Record){
		"unsigned":           func(r *Record) { r.Key = [32]byte{} },
		"empty id":           func(r *Record) { r.ID = "" },
		"version":            func(r *Record) { r.Version = MaxVersion + 1 },
		"self as signer":     func(r *Record) { r.Signer = "n1" },
		"principal":          func(r *Record) { r.Principal = "ops" },
		"signer, not left":   func(r *Record) { r.Signer = "n2" },
		"long principal":     func(r *Record) { r.Signer, r.Left, r.Principal = "n2", true, strings.Repeat("p", 65) },
		"removal with rpc":   func(r *Record) { r.Signer, r.Left, r.RPC = "n2", true, "x:1" },
		"removal w/ gossip":  func(r *Record) { r.Signer, r.Left, r.Gossip = "n2", true, "x:1" },
		"long address":       func(r *Record) { r.HTTP = strings.Repeat("h", MaxAddrLen+1) },
		"long id":            func(r *Record) { r.ID = strings.Repeat("n", MaxIDLen+1) },
		"forced, not remove": func(r *Record) { r.Forced = true },
	} {
		r := good
		mut(&r)
		if err := Verify(r, state{}.lookup, Policy{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// The record travels as msgpack in node's ring state and, for a member's
// own record, in memberlist's node metadata, limited to 512 bytes: a
// record with Kubernetes-length addresses fits, and decodes back equal.
// A record of an older binary (no key) decodes as unsigned and is refused.
func TestMsgpack(t *testing.T) {
	const host = "quorumkv-127.quorumkv-peers.quorumkv-prod.svc.cluster.local"
	i := identity(t, "quorumkv-127", 1)
	r := sign(t, i, Record{ID: "quorumkv-127", RPC: host + ":7100", HTTP: host + ":8080", RESP: host + ":6379",
		Gossip: host + ":7946", Version: MaxVersion, Incarnation: math.MaxUint64})
	b, err := msgpack.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 512 {
		t.Fatalf("own record is %d bytes, over memberlist's 512-byte metadata", len(b))
	}
	t.Logf("own record with %d-byte addresses: %d bytes of msgpack", len(host)+5, len(b))
	var back Record
	if err := msgpack.Unmarshal(b, &back); err != nil || back != r {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, r)
	}
	if err := Verify(back, state{}.lookup, Policy{}); err != nil {
		t.Fatal(err)
	}
	type oldRecord struct {
		ID      string `msgpack:"id"`
		RPC     string `msgpack:"rpc"`
		HTTP    string `msgpack:"http"`
		Version uint64 `msgpack:"v"`
	}
	ob, _ := msgpack.Marshal(&oldRecord{ID: "n1", RPC: "x:1", HTTP: "x:2", Version: 3})
	var fromOld Record
	if err := msgpack.Unmarshal(ob, &fromOld); err != nil {
		t.Fatal(err)
	}
	if err := Verify(fromOld, state{}.lookup, Policy{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("record of an older binary: %v", err)
	}
}

// Policy.AcceptUnsigned (a rolling upgrade from the release before signed
// records): an unsigned own record is taken for an id held unsigned or not
// at all, never over a signed one, and never as a removal.
func TestAcceptUnsigned(t *testing.T) {
	n1, err := NewIdentity("n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := n1.Sign(Record{ID: "n1", RPC: "a:1", Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	old := Record{ID: "n1", RPC: "a:2", Version: 9}
	held := map[string]Record{}
	lookup := func(id string) (Record, bool) { r, ok := held[id]; return r, ok }
	on := Policy{AcceptUnsigned: true}
	if err := Verify(old, lookup, Policy{}); err == nil {
		t.Fatal("an unsigned record was taken without AcceptUnsigned")
	}
	if err := Verify(old, lookup, on); err != nil {
		t.Fatalf("unsigned record of an id not held: %v", err)
	}
	held["n1"] = Record{ID: "n1", RPC: "a:0", Version: 1}
	if err := Verify(old, lookup, on); err != nil {
		t.Fatalf("unsigned record of an id held unsigned: %v", err)
	}
	held["n1"] = signed
	if err := Verify(old, lookup, on); err == nil {
		t.Fatal("an unsigned record replaced a signed one")
	}
	delete(held, "n1")
	removal := Record{ID: "n1", Left: true, Version: 9, Signer: "n2"}
	if err := Verify(removal, lookup, on); err == nil {
		t.Fatal("an unsigned removal was taken")
	}
	long := old
	long.RPC = string(make([]byte, MaxAddrLen+1))
	if err := Verify(long, lookup, on); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an unsigned record out of bounds: %v", err)
	}
}

// An empty rejoin: n3 comes back on a new data directory (new key, new
// incarnation) after its removal. The removal of its earlier incarnation
// fails Verify against the record it holds of itself, but it is an
// authentic removal it must outbid; a forged one, or one of its own
// incarnation, is not.
func TestVerifyEarlierRemoval(t *testing.T) {
	n1, n2, n3 := newMember(t, "n1", 1), newMember(t, "n2", 2), newMember(t, "n3", 3)
	gossipAll(n1, n2, n3)
	rm, err := n1.id.SignRemoval(n1.state["n3"], "ops", true)
	if err != nil {
		t.Fatal(err)
	}
	wiped := identity(t, "n3", 33)
	fresh := newMember(t, "n3", 33)
	fresh.id = wiped
	fresh.state["n3"] = sign(t, wiped, Record{ID: "n3", RPC: "10.0.0.33:7100", Version: 1, Incarnation: 3333})
	fresh.state["n1"], fresh.state["n2"] = n1.state["n1"], n2.state["n2"]
	self := fresh.state["n3"]
	if err := Verify(rm, fresh.state.lookup, Policy{RekeyNewIncarnation: true}); err == nil {
		t.Fatal("Verify took the removal of another incarnation: the case VerifyEarlierRemoval is for is gone")
	}
	if err := VerifyEarlierRemoval(rm, self, fresh.state.lookup); err != nil {
		t.Fatalf("authentic removal of the earlier incarnation: %v", err)
	}
	forged := rm
	forged.Version++
	if err := VerifyEarlierRemoval(forged, self, fresh.state.lookup); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged removal: %v", err)
	}
	if err := VerifyEarlierRemoval(rm, n3.state["n3"], n3.state.lookup); err == nil {
		t.Fatal("a removal of this very incarnation taken as an earlier one's")
	}
	unknown := state{"n3": self}
	if err := VerifyEarlierRemoval(rm, self, unknown.lookup); !errors.Is(err, ErrUnauthorizedRemoval) {
		t.Fatalf("removal by a member this node does not know: %v", err)
	}
}
