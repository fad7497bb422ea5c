package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
	"pgregory.net/rapid"
)

// mergeTwin is a replica of n1 with what its callbacks saw, one of a
// pair that get the same writes: MergeSet on one, MergeEncoded on the
// other.
type mergeTwin struct {
	st   *store.Store
	rep  *Replica
	seen []string // Observer and Trimmed calls, in order
}

func newMergeTwin(t *testing.T, pol siblings.Policy, now time.Time) *mergeTwin {
	t.Helper()
	w := &mergeTwin{st: storetest.Open(t)}
	dir, err := OpenDir(w.st, "n1")
	if err != nil {
		t.Fatal(err)
	}
	w.rep, err = New(Config{
		Self: "n1", Store: w.st, Epochs: dir.Epochs, Siblings: pol,
		Now: func() time.Time { return now },
		Observer: func(k ring.Key, old, nw uint64) {
			w.seen = append(w.seen, fmt.Sprintf("observe %s %x %x", k.Key, old, nw))
		},
		Trimmed: func(k ring.Key, hintFor string, kept int, dropped []vclock.Sibling) {
			w.seen = append(w.seen, fmt.Sprintf("trimmed %s %q %d %v", k.Key, hintFor, kept, dropped))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// record returns k's stored record (its hint for hintFor when set), nil
// when there is none.
func (w *mergeTwin) record(t *rapid.T, hintFor string, k ring.Key) []byte {
	var b []byte
	var err error
	if hintFor == "" {
		b, err = w.st.Get(k)
	} else {
		b, err = w.st.GetHint(hintFor, k)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMergeEncodedMatchesMergeSet: for random stored copies (none,
// merged, minted), incoming sets (newer, older, concurrent, equal, with
// deadlines past, near and far, tombstones, past the merge caps) and
// hints, MergeEncoded of the set's bytes leaves the very record MergeSet
// leaves, byte for byte, and reports the same clean, prior, observer
// digests and trimmed siblings; and it writes the incoming bytes as they
// came (no decode) in the cases it should.
func TestMergeEncodedMatchesMergeSet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ns := now.UnixNano()
	policies := map[string]siblings.Policy{
		"defaults":   {},
		"small caps": {MaxCount: 1, MaxBytes: 80, MergeCount: 2, MergeBytes: 150},
	}
	for name, pol := range policies {
		t.Run(name, func(t *testing.T) {
			slow, fast := newMergeTwin(t, pol, now), newMergeTwin(t, pol, now)
			actors := []vclock.Actor{{Node: "n1", Epoch: 1}, {Node: "n2", Epoch: 1}, {Node: "n3", Epoch: 2}, {Node: "n3", Epoch: 3}}
			value := func(t *rapid.T, label string) vclock.Value {
				v := vclock.Value{
					Data:        []byte(rapid.SampledFrom([]string{"", "x", "a value of some length"}).Draw(t, label+"-data")),
					ContentType: rapid.SampledFrom([]string{"", "text/plain"}).Draw(t, label+"-type"),
					Deleted:     rapid.IntRange(0, 4).Draw(t, label+"-deleted") == 0,
					Timestamp:   rapid.Int64Range(-3, 3).Draw(t, label+"-ts"),
					Expires: rapid.SampledFrom([]int64{0, 0, ns - 2*int64(time.Second), ns - int64(time.Second),
						ns - int64(time.Second) + 1, ns + int64(time.Hour)}).Draw(t, label+"-expires"),
				}
				if v.Deleted {
					v.Data, v.ContentType = nil, ""
				}
				if len(v.Data) == 0 {
					v.Data = nil
				}
				return v
			}
			history := func(t *rapid.T, label string, from vclock.Set) vclock.Set {
				return drawHistory(t, label, from, 3, actors, value)
			}
			n, raw := 0, 0
			rapid.Check(t, func(t *rapid.T) {
				n++
				k := key(fmt.Sprint("k", n))
				var err error
				hintFor := rapid.SampledFrom([]string{"", "", "n7"}).Draw(t, "hint")
				check := rapid.Bool().Draw(t, "check")
				common := history(t, "common", vclock.Set{})
				stored := history(t, "stored", common)
				in := history(t, "in", common)
				found := false
				switch rapid.IntRange(0, 2).Draw(t, "store") {
				case 1: // a replica's copy
					found = len(stored.Context) > 0
					for _, w := range []*mergeTwin{slow, fast} {
						if found {
							if _, err := w.rep.MergeSet(context.Background(), hintFor, k, stored, false); err != nil {
								t.Fatal(err)
							}
						}
					}
				case 2: // this node's own write, under a mint epoch: copied as it is
					found = true
					if _, err := slow.rep.Mint(context.Background(), ring.Target{Node: "n1", HintFor: ring.NodeID(hintFor)}, k, nil, val("mine"), false); err != nil {
						t.Fatal(err)
					}
					rec := slow.record(t, hintFor, k)
					put := func([]byte, bool) ([]byte, error) { return bytes.Clone(rec), nil }
					if hintFor == "" {
						_, err = fast.st.UpdateOwned(context.Background(), k, false, put)
					} else {
						_, _, err = fast.st.UpdateHint(context.Background(), hintFor, k, false, put)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				before := slow.record(t, hintFor, k)
				if !bytes.Equal(before, fast.record(t, hintFor, k)) {
					t.Fatalf("the twins' records differ before the merge")
				}
				enc, err := in.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				e, err := vclock.CheckSet(enc)
				if err != nil || !e.AsIs() {
					t.Fatalf("CheckSet = %v, %v", e.AsIs(), err)
				}
				if want := len(slow.rep.cfg.Siblings.Fit(in).Trimmed) == 0; slow.rep.fits(e) != want {
					t.Fatalf("fits %v, Fit trims nothing: %v", !want, want)
				}
				slow.seen, fast.seen = nil, nil
				var clean, gotClean bool
				var prior, gotPrior []byte
				if check {
					clean, prior, err = slow.rep.MergeSetChecked(context.Background(), hintFor, k, in, false)
				} else {
					_, err = slow.rep.MergeSet(context.Background(), hintFor, k, in, false)
				}
				if err != nil {
					t.Fatal(err)
				}
				if gotClean, gotPrior, err = fast.rep.MergeEncoded(context.Background(), hintFor, k, e, false, check); err != nil {
					t.Fatal(err)
				}
				after := slow.record(t, hintFor, k)
				got := fast.record(t, hintFor, k)
				if !bytes.Equal(got, after) {
					t.Fatalf("MergeEncoded's record\n%x, MergeSet's\n%x", got, after)
				}
				if check && (gotClean != clean || !bytes.Equal(gotPrior, prior)) {
					t.Fatalf("MergeEncoded: clean %v, prior %x; MergeSet: %v, %x", gotClean, gotPrior, clean, prior)
				}
				if !slices.Equal(fast.seen, slow.seen) {
					t.Fatalf("MergeEncoded's callbacks %q, MergeSet's %q", fast.seen, slow.seen)
				}
				// Where the record is the incoming bytes behind an envelope.
				outright := !found
				if found && len(before) > 0 {
					outright, _ = e.Supersedes(SetBytes(before))
				}
				if outright && slow.rep.fits(e) && !e.ExpiresBy(slow.rep.expireBefore()) {
					raw++
					if !bytes.Equal(SetBytes(got), enc) {
						t.Fatalf("an outright merge stored %x, not the incoming %x", SetBytes(got), enc)
					}
				}
			})
			t.Logf("%d of %d merges wrote the incoming bytes as they came", raw, n)
			if raw < n/10 {
				t.Fatalf("only %d of %d merges were outright", raw, n)
			}
		})
	}
}

// TestMergeEncodedPlantedBugs: with a merge bug planted, MergeEncoded
// merges as MergeSet does under it (the bug's merge), so the detectors
// that catch it through the RPC path still do.
func TestMergeEncodedPlantedBugs(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	n2, n3 := vclock.Actor{Node: "n2", Epoch: 1}, vclock.Actor{Node: "n3", Epoch: 1}
	a, _ := vclock.Update(vclock.Set{}, nil, n2, vclock.Value{Data: []byte("a"), Timestamp: 1})
	both, _ := vclock.Update(a, nil, n3, vclock.Value{Data: []byte("b"), Timestamp: 2}) // two siblings
	enc, _ := both.MarshalBinary()
	for _, bug := range []plant.Bug{plant.MergeKeepsNewest, plant.MergeResurrects} {
		t.Run(bug.String(), func(t *testing.T) {
			undo := plant.Plant(bug)
			defer undo()
			slow, fast := newMergeTwin(t, siblings.Policy{}, now), newMergeTwin(t, siblings.Policy{}, now)
			if _, err := slow.rep.MergeSet(t.Context(), "", key("k"), both, false); err != nil {
				t.Fatal(err)
			}
			e, _ := vclock.CheckSet(enc)
			if _, _, err := fast.rep.MergeEncoded(t.Context(), "", key("k"), e, false, false); err != nil {
				t.Fatal(err)
			}
			want, _ := slow.st.Get(key("k"))
			got, _ := fast.st.Get(key("k"))
			if !bytes.Equal(got, want) {
				t.Fatalf("MergeEncoded stored %x, MergeSet under the bug %x", got, want)
			}
			if bug == plant.MergeKeepsNewest && bytes.Equal(SetBytes(got), enc) {
				t.Fatal("the bug's merge kept both siblings")
			}
		})
	}
}
