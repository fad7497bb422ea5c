package node

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/internal/golden"
	"github.com/quorumkv/quorumkv/ringstate"
	"github.com/quorumkv/quorumkv/vclock"
)

// Issue 17: the encodings node owns, pinned so that a change is a
// decision, not an accident. Nodes of different releases exchange them
// during a rolling upgrade: the ring state (gossip push/pull and
// broadcasts, and the store's meta "cluster"), a member's own record in
// memberlist metadata, the leaving notice, and the signed client context
// tokens that clients carry from one node to another. The files were
// written by this code and the same tests pass on the last release
// (8b71df9, with internal/golden copied in): both releases produce and
// read these bytes. Rules for changing them are in docs/ARCHITECTURE.md
// ("Compatibility between releases").

// goldenRecords are member records covering every field and the widths
// msgpack picks for them.
var goldenRecords = []MemberRecord{
	{ID: "n1", RPC: "10.0.0.1:7946", HTTP: "10.0.0.1:8080", Version: 1},
	{ID: "n2", RPC: "n2:7946", HTTP: "n2:8080", RESP: "n2:6379", Gossip: "n2:7947", Version: 300, Incarnation: 0x1234_5678_9abc_def0},
	{ID: "node-3.zone_b", RPC: "[2001:db8::3]:7946", HTTP: "[2001:db8::3]:8080", Version: 1<<32 + 7, Incarnation: 1, Left: true},
}

func goldenState() ClusterState {
	s := ClusterState{Partitions: 256, Tokens: 64, Members: map[string]MemberRecord{}}
	for _, r := range goldenRecords {
		s.Members[r.ID] = r
	}
	return s
}

func TestGoldenGossip(t *testing.T) {
	must := golden.Must(t)
	var s []golden.Sample
	add := func(name string, b []byte) { s = append(s, golden.Sample{Name: name, Bytes: b}) }

	// The encoder does not sort the member map (the msgpack library's
	// SetSortMapKeys covers only maps of strings, bools and interfaces), so
	// only states of at most one member have one encoding; a larger one
	// is pinned by decoding (TestGoldenGossipDecode).
	empty := ClusterState{Partitions: 256, Tokens: 64, Members: map[string]MemberRecord{}}
	add("state/empty", must(empty.Encode()))
	one := ClusterState{Partitions: 256, Tokens: 64, Members: map[string]MemberRecord{"n2": goldenRecords[1]}}
	add("state/one", must(one.Encode()))
	claim := ClusterState{Partitions: 1024, Tokens: 64, Members: map[string]MemberRecord{"a": {ID: "a", RPC: "a:1", HTTP: "a:2", Version: 2}}}
	add("state/q1024", must(claim.Encode()))
	for _, r := range goldenRecords {
		add("meta/"+r.ID, ringstate.EncodeMeta(r))
	}
	add("leaving/n1", []byte(leavingNotice+"n1"))
	golden.Check(t, "testdata/gossip.golden", s)

	// Today's bytes decode to today's values.
	for _, st := range []ClusterState{empty, one, goldenState(), claim} {
		got, err := DecodeClusterState(must(st.Encode()))
		if err != nil || !reflect.DeepEqual(got, st) {
			t.Fatalf("state round trip: %+v, %v; want %+v", got, err, st)
		}
	}
	for _, r := range goldenRecords {
		got, err := ringstate.DecodeMeta(ringstate.EncodeMeta(r))
		if err != nil || got != r {
			t.Fatalf("meta round trip: %+v, %v; want %+v", got, err, r)
		}
	}
}

// goldenThreeHex is a ring state of goldenRecords as the last release
// (8b71df9) wrote it, members in one of the orders its encoder may pick.
const goldenThreeHex = "0183a171cd0100a17440a16d83a26e3184a26964a26e31a3727063ad31302e302e302e313a37393436a468747470ad31302e302e302e313a38303830a176cf0000000000000001a26e3287a26964a26e32a3727063a76e323a37393436a468747470a76e323a38303830a472657370a76e323a36333739a6676f73736970a76e323a37393437a176cf000000000000012ca3696e63cf123456789abcdef0ad6e6f64652d332e7a6f6e655f6286a26964ad6e6f64652d332e7a6f6e655f62a3727063b25b323030313a6462383a3a335d3a37393436a468747470b25b323030313a6462383a3a335d3a38303830a176cf0000000100000007a3696e63cf0000000000000001a46c656674c3"

// A ring state of several members, as the last release wrote it, decodes
// to the same state, and this release's encoding of it is the same bytes
// up to the order of the members.
func TestGoldenGossipDecode(t *testing.T) {
	b, err := hex.DecodeString(goldenThreeHex)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeClusterState(b)
	if err != nil || !reflect.DeepEqual(got, goldenState()) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, goldenState())
	}
	enc, err := goldenState().Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The format byte, q, t, "m" and the members' map header: 13 bytes.
	if len(enc) != len(b) || !bytes.Equal(enc[:13], b[:13]) {
		t.Fatalf("encoding %x differs from the last release's %x beyond the member order", enc, b)
	}
	for _, r := range goldenRecords {
		rec := ringstate.EncodeMeta(r) // a member's record encodes alike inside the state
		key := append([]byte{0xa0 | byte(len(r.ID))}, r.ID...)
		if !bytes.Contains(enc, append(key, rec...)) || !bytes.Contains(b, append(key, rec...)) {
			t.Fatalf("member %s is not encoded as its metadata record inside the state", r.ID)
		}
	}
}

// A later release may append fields to the member record and the ring
// state (new msgpack map keys): this one ignores them and keeps the rest,
// so that old and new nodes still gossip during a rolling upgrade. A
// field it ignored is not gossiped on by it, which is why a new field
// must be optional (omitempty, zero meaning "as before").
func TestGossipIgnoresAppendedFields(t *testing.T) {
	type futureRecord struct {
		MemberRecord `msgpack:",inline"`
		Rack         string `msgpack:"rack"`
		Weight       int    `msgpack:"weight"`
	}
	type futureState struct {
		Partitions int                     `msgpack:"q"`
		Tokens     int                     `msgpack:"t"`
		Members    map[string]futureRecord `msgpack:"m"`
		Flavor     uint8                   `msgpack:"flavor"`
		Assignment []byte                  `msgpack:"assign"`
	}
	want := goldenState()
	fs := futureState{Partitions: 256, Tokens: 64, Members: map[string]futureRecord{}, Flavor: 2, Assignment: []byte{1, 2, 3}}
	for id, r := range want.Members {
		fs.Members[id] = futureRecord{MemberRecord: r, Rack: "z1", Weight: 3}
	}
	var buf bytes.Buffer
	buf.WriteByte(ringstate.Format)
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(&fs); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeClusterState(buf.Bytes())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("state with appended fields: %+v, %v; want %+v", got, err, want)
	}
	meta, err := msgpack.Marshal(&futureRecord{MemberRecord: goldenRecords[1], Rack: "z1", Weight: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ringstate.DecodeMeta(meta); err != nil || r != goldenRecords[1] {
		t.Fatalf("meta with appended fields: %+v, %v", r, err)
	}
	// A new format byte is refused by name, not misread.
	b := bytes.Clone(buf.Bytes())
	b[0] = ringstate.Format + 1
	if _, err := DecodeClusterState(b); err == nil {
		t.Fatal("a ring state of an unknown format decoded")
	}
}

// Client context tokens: "<vclock token>.<mac>". The golden tokens are the
// previous release's (its key derived from the secret by SHA-256, a public
// constant without one). A client may read through a node of one release
// and write through one of another: with a secret, this release signs
// those same bytes during the upgrade window and verifies them after it;
// the public constant's tokens are refused (the key is never public now).
func TestGoldenContextToken(t *testing.T) {
	v := vclock.Vector{{Actor: vclock.Actor{Node: "n1", Epoch: 7}, Counter: 3}, {Actor: vclock.Actor{Node: "n2", Epoch: 1 << 40}, Counter: 1 << 20}}
	var s []golden.Sample
	for _, tc := range []struct{ name, secret string }{{"secret", "golden secret"}, {"nosecret", ""}} {
		old, err := ctxauth.NewSigner(legacyContextKey(tc.secret))
		if err != nil {
			t.Fatal(err)
		}
		tok := old.EncodeContext(v)
		s = append(s, golden.Sample{Name: "context/" + tc.name, Bytes: []byte(tok)})
		if tc.secret == "" {
			k, _ := ctxauth.NewClusterKey(nil)
			if _, err := signerNode(t, Config{}, k).DecodeContext(tok); err == nil {
				t.Fatal("a token signed with the public constant verified")
			}
			continue
		}
		window := signerNode(t, Config{Secret: tc.secret, AcceptV1Peers: true}, nil)
		if got := window.EncodeContext(v); got != tok {
			t.Fatalf("upgrade window token %q, previous release %q", got, tok)
		}
		got, err := signerNode(t, Config{Secret: tc.secret}, nil).DecodeContext(tok)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("%s: token %q decodes to %v, %v", tc.name, tok, got, err)
		}
	}
	golden.Check(t, "testdata/context.golden", s)
}
