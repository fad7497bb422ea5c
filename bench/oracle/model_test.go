package oracle

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// model is a naive oracle: it keeps every event and recomputes each
// judgement from the definitions in doc.go, with transitive closures by
// brute force.
type model struct {
	tombHidden bool
	history    int
	writes     map[ID]*mwrite
	order      []ID // acknowledged, in feed order, per key below
	acks       map[string][]ID
	observed   map[ID]bool
	resurr     map[ID]bool
	finalRet   map[string][]ID
}

type mwrite struct {
	key  string
	past []ID // direct
	tomb bool
	out  Outcome
	ack  time.Duration
}

func newModel(history int, tombHidden bool) *model {
	return &model{history: history, tombHidden: tombHidden, writes: map[ID]*mwrite{}, acks: map[string][]ID{},
		observed: map[ID]bool{}, resurr: map[ID]bool{}, finalRet: map[string][]ID{}}
}

// pastOf is the transitive Past of x.
func (m *model) pastOf(x ID) map[ID]bool {
	out := map[ID]bool{}
	var walk func(ID)
	walk = func(id ID) {
		for _, p := range m.writes[id].past {
			if !out[p] {
				out[p] = true
				walk(p)
			}
		}
	}
	walk(x)
	return out
}

func (m *model) supersedes(x, w ID) bool { return m.pastOf(x)[w] }

// answer lands ret and returns the writes newly found resurrected.
func (m *model) answer(ret []ID) {
	for _, id := range ret {
		m.observed[id] = true
	}
	for _, u := range ret {
		for _, v := range ret {
			if u != v && m.supersedes(v, u) {
				m.resurr[u] = true
			}
		}
	}
}

type mverdict struct {
	stale      bool
	k          int
	latest     ID
	latestSeen bool
}

func (m *model) read(key string, ret []ID, invoke time.Duration) mverdict {
	m.answer(ret)
	var prior []ID // P(r)
	for _, id := range m.acks[key] {
		if m.writes[id].ack < invoke {
			prior = append(prior, id)
		}
	}
	recent := m.acks[key]
	if len(recent) > m.history {
		recent = recent[len(recent)-m.history:]
	}
	var h []ID
	for _, id := range recent {
		if m.writes[id].ack < invoke {
			h = append(h, id)
		}
	}
	var f []ID
	for _, w := range prior {
		sup := false
		for _, u := range prior {
			if u != w && m.supersedes(u, w) {
				sup = true
			}
		}
		if !sup {
			f = append(f, w)
		}
	}
	returnsOrSuccessor := func(w ID) bool {
		for _, v := range ret {
			if v == w || m.supersedes(v, w) {
				return true
			}
		}
		return false
	}
	cands := append(slices.Clone(h), f...)
	respected := map[ID]bool{}
	for _, t := range cands {
		if !m.writes[t].tomb || returnsOrSuccessor(t) {
			continue
		}
		ok := true
		for _, v := range ret {
			if m.supersedes(t, v) {
				ok = false
			}
		}
		respected[t] = ok
	}
	covered := func(w ID) bool {
		if returnsOrSuccessor(w) || respected[w] {
			return true
		}
		for t, ok := range respected {
			if ok && m.supersedes(t, w) {
				return true
			}
		}
		return false
	}
	var v mverdict
	for _, w := range f {
		if !covered(w) {
			v.stale = true
		}
	}
	for _, w := range h {
		if !covered(w) {
			v.k++
		}
		if v.latest == 0 || m.writes[w].ack > m.writes[v.latest].ack || (m.writes[w].ack == m.writes[v.latest].ack && w > v.latest) {
			v.latest = w
		}
	}
	if v.latest != 0 {
		v.latestSeen = covered(v.latest)
	}
	return v
}

// result recomputes the final judgements (finalRet must be set for every
// key with writes).
func (m *model) result() (lost, indeterminate int64, resurrected map[ID]bool) {
	resurrected = map[ID]bool{}
	for id := range m.resurr {
		resurrected[id] = true
	}
	landedOrAcked := func(x ID) bool { return m.observed[x] || m.writes[x].out == Acked }
	superseded := func(w ID) bool {
		for x := range m.writes {
			if m.writes[x].key == m.writes[w].key && landedOrAcked(x) && m.supersedes(x, w) {
				return true
			}
		}
		return false
	}
	for id, w := range m.writes {
		ret := m.finalRet[w.key]
		if slices.Contains(ret, id) && superseded(id) {
			resurrected[id] = true
		}
		if w.out == Acked && !slices.Contains(ret, id) && !superseded(id) && !(w.tomb && m.tombHidden) {
			lost++
		}
		if (w.out == Failed || w.out == Unknown) && m.observed[id] {
			indeterminate++
		}
	}
	return lost, indeterminate, resurrected
}

// TestOracleMatchesNaiveModel feeds random histories (answers that need
// not be consistent with any store) to the oracle with KeepAll, to one
// that drops old writes, and to the naive model. KeepAll must agree with
// the model on everything. The dropping oracle must agree on lost,
// indeterminate, k-staleness and t-visibility; it may skip a resurrection
// seen within the run for a dropped write (never one the final read
// shows) and, with tombstones, take a dropped write as deleted.
func TestOracleMatchesNaiveModel(t *testing.T) {
	dropped := 0 // histories where the bounded oracle dropped writes
	rapid.Check(t, func(rt *rapid.T) {
		history := rapid.IntRange(1, 4).Draw(rt, "history")
		hidden := rapid.Bool().Draw(rt, "tombHidden")
		tombs := rapid.Bool().Draw(rt, "tombstones")
		keys := []string{"a", "b"}
		exact, _ := New(Config{History: history, KeepAll: true, TombstonesHidden: hidden})
		bounded, _ := New(Config{History: history, TombstonesHidden: hidden})
		m := newModel(history, hidden)
		type pending struct {
			e, b Op
			key  string
		}
		var inflight []pending
		ctxs := map[string][][]ID{} // answers seen per key, as id lists
		exCtx := map[string][]Context{}
		bdCtx := map[string][]Context{}
		now := time.Duration(0)
		value := func(key string, id ID) []byte { return appendTag(nil, 0, keyHash(key), id) }

		steps := rapid.IntRange(1, 150).Draw(rt, "steps")
		for step := range steps {
			now += time.Millisecond
			key := rapid.SampledFrom(keys).Draw(rt, "key")
			switch rapid.IntRange(0, 10).Draw(rt, "op") {
			case 0, 1, 2: // invoke a write
				var ce, cb Context
				var past []ID
				if n := len(ctxs[key]); n > 0 && rapid.IntRange(0, 3).Draw(rt, "blind") > 0 {
					i := rapid.IntRange(0, n-1).Draw(rt, "ctx")
					ce, cb, past = exCtx[key][i], bdCtx[key][i], ctxs[key][i]
				}
				tomb := tombs && rapid.IntRange(0, 4).Draw(rt, "tomb") == 0
				e := exact.Invoke(Write{Key: key, Context: ce, Tombstone: tomb, Invoke: now})
				b := bounded.Invoke(Write{Key: key, Context: cb, Tombstone: tomb, Invoke: now})
				if e.ID() != b.ID() {
					rt.Fatalf("ids diverge")
				}
				m.writes[e.ID()] = &mwrite{key: key, past: past, tomb: tomb}
				inflight = append(inflight, pending{e, b, key})
			case 3, 4, 5: // complete one, most often an old one
				if len(inflight) == 0 {
					continue
				}
				i := rapid.IntRange(0, min(len(inflight)-1, 2)).Draw(rt, "which")
				p := inflight[i]
				inflight = slices.Delete(inflight, i, i+1)
				out := rapid.SampledFrom([]Outcome{Acked, Acked, Acked, Failed, Unknown}).Draw(rt, "outcome")
				exact.Complete(p.e, out, now)
				bounded.Complete(p.b, out, now)
				w := m.writes[p.e.ID()]
				w.out = out
				if out == Acked {
					w.ack = now
					m.acks[p.key] = append(m.acks[p.key], p.e.ID())
				}
			default: // an answer: a scored read or a write's answer
				var all []ID
				for id, w := range m.writes {
					if w.key == key {
						all = append(all, id)
					}
				}
				slices.Sort(all)
				var ret []ID
				var vals [][]byte
				for _, id := range all {
					if rapid.IntRange(0, 2).Draw(rt, "returned") == 0 {
						ret = append(ret, id)
						vals = append(vals, value(key, id))
					}
				}
				if rapid.IntRange(0, 9).Draw(rt, "foreign") == 0 {
					vals = append(vals, []byte("someone else's value"))
				}
				if rapid.Bool().Draw(rt, "scored") {
					back := time.Duration(rapid.IntRange(0, 5).Draw(rt, "age")) * time.Millisecond
					r := Read{Key: key, Values: vals, Invoke: now - back, Done: now}
					ce, ve := exact.Read(r)
					cb, vb := bounded.Read(r)
					vm := m.read(key, ret, now-back)
					got := mverdict{stale: ve.Stale, k: ve.K, latest: ve.Latest, latestSeen: ve.LatestSeen}
					if got != vm {
						rt.Fatalf("step %d read %s %v at %v: exact oracle %+v, model %+v", step, key, ret, now-back, got, vm)
					}
					// With tombstones, a dropped write a read returns
					// is taken as one the delete removed: no comparison.
					if !tombs {
						if vb.K != ve.K || vb.Latest != ve.Latest || vb.LatestSeen != ve.LatestSeen || (vb.Stale && !ve.Stale) {
							rt.Fatalf("step %d: bounded verdict %+v, exact %+v", step, vb, ve)
						}
						if vb.Stale != ve.Stale && !droppedFrontier(exact, bounded, key, now-back) {
							rt.Fatalf("step %d: bounded stale %v, exact %v", step, vb.Stale, ve.Stale)
						}
					}
					exCtx[key] = append(exCtx[key], ce)
					bdCtx[key] = append(bdCtx[key], cb)
				} else {
					exCtx[key] = append(exCtx[key], exact.Observe(key, vals))
					bdCtx[key] = append(bdCtx[key], bounded.Observe(key, vals))
					m.answer(ret)
				}
				ctxs[key] = append(ctxs[key], ret)
			}
		}
		// Finish: the outcomes still pending stay pending; every key gets
		// a final read of a random subset.
		for _, key := range keys {
			var ret []ID
			var vals [][]byte
			for id, w := range m.writes {
				if w.key == key && rapid.Bool().Draw(rt, "final") {
					ret = append(ret, id)
					vals = append(vals, value(key, id))
				}
			}
			exact.Final(key, vals)
			bounded.Final(key, vals)
			m.answer(ret)
			m.finalRet[key] = ret
		}
		for _, key := range keys {
			if bk, ek := bounded.keys[key], exact.keys[key]; bk != nil && len(bk.nodes) < len(ek.nodes) {
				dropped++
				break
			}
		}
		lost, ind, res := m.result()
		re, rb := exact.Result(), bounded.Result()
		if re.Lost != lost || re.Indeterminate != ind || re.Resurrected != int64(len(res)) {
			rt.Fatalf("exact: lost %d indeterminate %d resurrected %d; model: %d %d %d (%v)", re.Lost, re.Indeterminate, re.Resurrected, lost, ind, len(res), res)
		}
		if rb.Lost != re.Lost || rb.Indeterminate != re.Indeterminate || rb.Resurrected > re.Resurrected ||
			rb.Acked != re.Acked || rb.Foreign != re.Foreign || rb.Unexpected != re.Unexpected {
			rt.Fatalf("bounded %+v\nexact %+v", rb, re)
		}
	})
	if dropped == 0 {
		t.Fatal("no history made the bounded oracle drop a write: the comparison tested nothing")
	}
	t.Logf("%d histories dropped writes", dropped)
}

// droppedFrontier reports whether the bounded oracle dropped a write that
// is in the frontier of a read begun at invoke (acknowledged before it,
// superseded by an acknowledged write only after it): the documented case
// where it may judge fresh a read the exact oracle judges stale.
func droppedFrontier(exact, bounded *Oracle, key string, invoke time.Duration) bool {
	bk := bounded.keys[key]
	for _, n := range exact.keys[key].nodes {
		if n.out == Acked && n.ack < invoke && n.supAck >= invoke && bk.find(n.id) == nil {
			return true
		}
	}
	return false
}
