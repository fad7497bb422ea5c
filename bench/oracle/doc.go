// Package oracle judges a replicated store's history from what its client
// wrote, saw and was told, and from nothing else. It never reads the store's
// version vectors or dots: a store that drops a value but keeps its dot in
// the vector (so that every context "covers" the value) is caught here,
// because the oracle only counts a value as superseded by a write whose
// context came from an answer that showed the client that very value.
//
// Every written value is unique: it starts with a tag (AppendTag, TagLen)
// that names the run, the key and the write id. The caller reports each
// write when it sends it (Invoke, with the Context it carries), its outcome
// (Complete: Acked, Failed or Unknown), and every answer that showed values
// (Observe for a write's answer, Read for a read, Final for the last read
// of a key at R=N after everything settled). Definitions, per key:
//
//   - Past(x), the writes x supersedes: the writes whose values the answer
//     behind x's context returned, and their Past, transitively. Only
//     answers the client saw build it. A blind write supersedes nothing.
//   - A write has landed when an answer showed it (or it was acknowledged).
//     A write is superseded when a landed or acknowledged write has it in
//     its Past.
//   - Lost: an acknowledged write that is neither returned by the final
//     read nor superseded. (With Config.TombstonesHidden, acknowledged
//     tombstones are never judged lost: such reads cannot show them.)
//   - Indeterminate: a write whose outcome was Failed or Unknown and that an
//     answer showed anyway (it landed after being reported failed, as
//     Dynamo allows). Counted apart: neither an error nor lost.
//   - Resurrected: a write returned by an answer together with a write that
//     supersedes it (a correct merge never keeps both), or returned by the
//     final read although it is superseded. Each write counts once.
//   - Stale: let P(r) be the writes acknowledged before read r began. The
//     newest values before r, its frontier F(r), are the writes of P(r)
//     that no other write of P(r) supersedes: with concurrent writes
//     (siblings) there are several. r covers w when it returns w or a write
//     that supersedes w; a tombstone t is also covered when r returns none
//     of the writes t supersedes (a read that shows nothing the delete
//     removed reflects it), and so is any write of P(r) superseded by such a
//     tombstone among the candidates below. r is stale when it misses a
//     write of F(r). Its k-staleness is how many of H(r), the key's last
//     History acknowledged writes that were acknowledged before r began, it
//     misses; t-visibility scores the newest write of H(r).
//   - Unexpected: a value carrying this run's tag that the oracle never
//     issued for that key (corruption, or a value served under the wrong
//     key). Foreign: a value without this run's tag (another run's data);
//     ignored.
//
// Memory: every write is kept until it is superseded by an acknowledged
// write, its outcome is known, and it is older than the key's last History
// acknowledged writes; then it is dropped (Config.KeepAll keeps all). A
// dropped write returned by a later answer is known to be superseded, so the
// final check still counts it resurrected; only the check that an answer
// returned it together with its successor is skipped for it. Compaction is
// lazy: per key that is between History+1 and 3*History+8 writes, plus live
// siblings and writes in flight, about 300 bytes each with their edges.
//
// The package does no I/O, reads no clock (times are offsets the caller
// gives) and is not safe for concurrent use: callers serialise it. The
// caller must feed every write acknowledged before a read began before that
// read (package bench takes the acknowledgement time under the lock that
// feeds the oracle).
//
//	o, _ := oracle.New(oracle.Config{Run: 7})
//	w := o.Invoke(oracle.Write{Key: "k", Invoke: 0})
//	val := o.AppendTag(nil, w) // send val (plus any padding) as the value
//	o.Complete(w, oracle.Acked, 2*time.Millisecond)
//	_, v := o.Read(oracle.Read{Key: "k", Values: [][]byte{val}, Invoke: 5 * time.Millisecond})
//	// v.Stale == false
package oracle
