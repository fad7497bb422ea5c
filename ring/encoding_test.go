package ring

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite ring/testdata/*.hex (only when adding a new format: existing files are compatibility promises)")

// handAssignment is a fixed assignment built without Plan, so that its
// golden encoding does not depend on the planner: Q=4, N=3, four members
// (one without a zone, one of weight 2).
func handAssignment() *Assignment {
	return &Assignment{
		version: 7, q: 4, n: 3, rowWidth: 3,
		members: []Member{{ID: "a", Weight: 1, Zone: "x"}, {ID: "b", Weight: 2, Zone: "y"}, {ID: "c", Weight: 1, Zone: "z"}, {ID: "d", Weight: 1}},
		owners: []uint16{
			0, 1, 2,
			1, 2, 3,
			2, 3, 0,
			3, 0, 1,
		},
	}
}

// wideAssignment has 300 members, so owners take two bytes each.
func wideAssignment() *Assignment {
	a := &Assignment{version: 1 << 40, q: 64, n: 2, rowWidth: 2}
	for i := range 300 {
		a.members = append(a.members, Member{ID: NodeID(fmt.Sprintf("node-%03d", i)), Weight: 1 + i%3, Zone: fmt.Sprint("zone-", i%5)})
	}
	for p := range 64 {
		a.owners = append(a.owners, uint16(p*4), uint16(299-p))
	}
	return a
}

func goldenHex(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	path := "testdata/" + name
	if *updateGolden {
		var sb strings.Builder
		for line := range slices.Chunk(b, 32) {
			sb.WriteString(hex.EncodeToString(line) + "\n")
		}
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(strings.ReplaceAll(string(text), "\n", ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return want
}

// The encoding is a compatibility promise: bytes persisted or gossiped by
// one version must decode, to the same assignment, in every later one.
func TestGoldenAssignmentEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    *Assignment
	}{
		{"assignment-v1.hex", handAssignment()},
		{"assignment-v1-wide.hex", wideAssignment()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := goldenHex(t, tc.name, tc.a.Encode())
			if got := tc.a.Encode(); !bytes.Equal(got, want) {
				t.Errorf("Encode = %x\nwant    %x", got, want)
			}
			a, err := DecodeAssignment(want)
			if err != nil {
				t.Fatalf("DecodeAssignment(golden): %v", err)
			}
			if !a.Equal(tc.a) {
				t.Errorf("decoded %v, want %v", a, tc.a)
			}
		})
	}
	// The first bytes by hand: format 1, version 7, log2 Q = 2, N = 3,
	// 4 members, then "a" weight 1 zone "x".
	if got, want := handAssignment().Encode()[:12], []byte{1, 7, 2, 3, 4, 1, 'a', 1, 1, 'x', 1, 'b'}; !bytes.Equal(got, want) {
		t.Errorf("header = %v, want %v", got, want)
	}
}

// The fallback order of a ModeClaim ring is computed by every node from
// the assignment, so it is a compatibility promise too.
func TestGoldenClaimPreference(t *testing.T) {
	if got := string(fallbackInput(nil, "node-01", 258)); got != "fnode-01\x00\x00\x01\x02" {
		t.Errorf("fallbackInput = %q", got)
	}
	r, err := FromAssignment(Config{}, handAssignment())
	if err != nil {
		t.Fatal(err)
	}
	golden := [][]NodeID{
		{"a", "b", "c", "d"},
		{"b", "c", "d", "a"},
		{"c", "d", "a", "b"},
		{"d", "a", "b", "c"},
	}
	for p, want := range golden {
		if got := r.Preference(uint32(p)); !slices.Equal(got, want) {
			t.Errorf("Preference(%d) = %q, want %q", p, got, want)
		}
	}
	ms := names(12)
	for i := range ms {
		ms[i].Zone = fmt.Sprint("z", i%4)
	}
	a := &Assignment{version: 1, q: 2, n: 2, rowWidth: 2, members: ms, owners: []uint16{0, 1, 2, 3}}
	if r, err = FromAssignment(Config{}, a); err != nil {
		t.Fatal(err)
	}
	// Zones z0..z3 hold node-01, 05, 09 / 02, 06, 10 / 03, 07, 11 /
	// 04, 08, 12. Partition 0 is owned in z0 and z1: its fallbacks are one
	// of z2 and z3, then one of every zone, then the last of every zone.
	wide := map[uint32][]NodeID{
		0: {"node-01", "node-02", "node-12", "node-07", "node-08", "node-10", "node-09", "node-03", "node-06", "node-04", "node-05", "node-11"},
		1: {"node-03", "node-04", "node-06", "node-05", "node-08", "node-11", "node-10", "node-01", "node-07", "node-12", "node-02", "node-09"},
	}
	for p, want := range wide {
		if got := r.Preference(p); !slices.Equal(got, want) {
			t.Errorf("12 members, Preference(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	cfg := claimCfg(4096, 3)
	ms := names(100)
	for i := range ms {
		ms[i].Zone = fmt.Sprint("rack-", i%4)
	}
	a, err := Plan(cfg, nil, ms)
	if err != nil {
		t.Fatal(err)
	}
	b := a.Encode()
	t.Logf("Q=4096, N=3, 100 members: %d bytes", len(b))
	if len(b) > 4096*3+100*24+32 {
		t.Errorf("encoding is %d bytes", len(b))
	}
	got, err := DecodeAssignment(b)
	if err != nil || !got.Equal(a) {
		t.Fatalf("round trip: %v", err)
	}
	r1, _ := FromAssignment(cfg, a)
	r2, _ := FromAssignment(cfg, got)
	if !r1.Equal(r2) {
		t.Error("rings of an assignment and its decoded copy differ")
	}
	empty := &Assignment{version: 3, q: 1, n: 3}
	if got, err := DecodeAssignment(empty.Encode()); err != nil || !got.Equal(empty) {
		t.Errorf("empty assignment: %v", err)
	}
}

// reseal recomputes the checksum of a tampered encoding, so that the
// decoder's other checks are the ones exercised.
func reseal(b []byte) []byte {
	body := b[:len(b)-8]
	return binary.BigEndian.AppendUint64(slices.Clone(body), xxhash.Sum64(body))
}

func TestDecodeAssignmentRejects(t *testing.T) {
	good := handAssignment().Encode()
	mut := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"format", mut(func(b []byte) []byte { b[0] = 2; return b }), "unknown format"},
		{"checksum", mut(func(b []byte) []byte { b[len(b)-1]++; return b }), "checksum"},
		{"truncated", reseal(good[:len(good)-9]), "bytes of owners"},
		{"trailing", reseal(append(slices.Clone(good[:len(good)-8]), 0, 0, 0, 0, 0, 0, 0, 0, 0)), "bytes of owners"},
		{"log2 Q", reseal(mut(func(b []byte) []byte { b[2] = 17; return b })), "log2"},
		{"zero N", reseal(mut(func(b []byte) []byte { b[3] = 0; return b })), "replicas"},
		{"big N", reseal(mut(func(b []byte) []byte { b[3] = MaxReplicas + 1; return b })), "replicas"},
		{"many members", reseal([]byte{1, 7, 2, 3, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0}), "16383 members, limit"},
		{"members the bytes cannot hold", reseal([]byte{1, 7, 2, 3, 0xff, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0}), "members in"},
		{"ids out of order", reseal(mut(func(b []byte) []byte { b[6], b[11] = 'b', 'a'; return b })), "ascending"},
		{"zero weight", reseal(mut(func(b []byte) []byte { b[7] = 0; return b })), "weight"},
		{"owner out of range", reseal(mut(func(b []byte) []byte { b[len(b)-9] = 4; return b })), "owner 4"},
		{"owner twice", reseal(mut(func(b []byte) []byte { b[len(b)-9] = b[len(b)-10]; return b })), "twice"},
		{"non-minimal varint", reseal(append([]byte{1, 0x87, 0x00}, good[2:]...)), "canonical"},
		{"huge", make([]byte, MaxAssignmentBytes+1), "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := DecodeAssignment(tc.b)
			if err == nil || a != nil || !errors.Is(err, ErrInvalidAssignment) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeAssignment = %v, %v; want an ErrInvalidAssignment about %q", a, err, tc.want)
			}
		})
	}
}

// FuzzDecodeAssignment checks that decoding bytes from the network or disk
// never panics, fails only with ErrInvalidAssignment, and that whatever it
// accepts re-encodes to the same bytes, builds a ring, and can seed a plan.
func FuzzDecodeAssignment(f *testing.F) {
	f.Add(handAssignment().Encode())
	f.Add(wideAssignment().Encode())
	f.Add((&Assignment{version: 1, q: 1, n: 1}).Encode())
	a, _ := Plan(claimCfg(16, 3), nil, zoned("a@x", "b@y", "c@z", "d@x", "e"))
	f.Add(a.Encode())
	f.Add(reseal(append([]byte{1, 0x87, 0x00}, handAssignment().Encode()[2:]...)))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) >= 8 {
			// Random bytes rarely carry a valid checksum: try them
			// resealed too, so the parser behind the check is explored.
			checkDecode(t, reseal(b))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	{
		a, err := DecodeAssignment(b)
		if err != nil {
			if a != nil || !errors.Is(err, ErrInvalidAssignment) {
				t.Fatalf("DecodeAssignment = %v, %v", a, err)
			}
			return
		}
		if !bytes.Equal(a.Encode(), b) {
			t.Fatal("accepted bytes that are not the canonical encoding")
		}
		again, err := DecodeAssignment(a.Encode())
		if err != nil || !again.Equal(a) {
			t.Fatalf("decode(encode(decode(b))) = %v, %v", again, err)
		}
		r, err := FromAssignment(Config{}, a)
		if err != nil {
			t.Fatalf("FromAssignment: %v", err)
		}
		for p := range uint32(a.Partitions()) {
			if !slices.Equal(r.Primaries(p, a.Replicas()), a.Owners(p)) {
				t.Fatalf("partition %d: primaries %v, owners %v", p, r.Primaries(p, a.Replicas()), a.Owners(p))
			}
		}
		if a.Partitions() <= 256 {
			cfg := Config{Mode: ModeClaim, Partitions: a.Partitions(), Replicas: a.Replicas()}
			if _, err := Plan(cfg, a, a.Members()); err != nil {
				t.Fatalf("Plan from a decoded assignment: %v", err)
			}
		}
	}
}
