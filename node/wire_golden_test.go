package node

import (
	"bytes"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/golden"
	"github.com/quorumkv/quorumkv/vclock"
)

// must fails the test on err; it returns b for use in an expression.
func must(t *testing.T) func(b []byte, err error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// TestWireGolden pins the bytes of every node-to-node message as this
// version sends them: nodes of different versions must keep understanding
// each other.
func TestWireGolden(t *testing.T) {
	mb := must(t)
	lib := func(v any) []byte { return mb(msgpack.Marshal(v)) }
	longHint := string(bytes.Repeat([]byte("h"), 40))
	var s []golden.Sample
	add := func(name string, b []byte) { s = append(s, golden.Sample{Name: name, Bytes: b}) }

	add("merge_req/small", (&mergeRequest{P: 3, H: 1 << 40, K: []byte("key"), Set: []byte{1, 2, 3}}).appendWire(nil))
	add("merge_req/hint_nil_set_durable", (&mergeRequest{K: []byte("k"), HintFor: "n2", Durable: true}).appendWire(nil))
	add("merge_req/wide", (&mergeRequest{P: math.MaxUint32, H: math.MaxUint64, K: pattern(300), HintFor: longHint, Set: pattern(300)}).appendWire(nil))
	add("merge_req/bin32_set", (&mergeRequest{P: 7, H: 9, K: []byte("big"), Set: pattern(70000)}).appendWire(nil))
	add("merge_req/empty_set", (&mergeRequest{P: 1, H: 2, K: []byte("e"), Set: []byte{}}).appendWire(nil))
	add("merge_resp/false", (&mergeResponse{}).appendWire(nil))
	add("merge_resp/true", (&mergeResponse{Durable: true}).appendWire(nil))
	add("read_req/plain", (&readRequest{P: 3, H: 9, K: []byte("key")}).appendWire(nil))
	add("read_req/hint", (&readRequest{P: 255, H: 1 << 63, K: pattern(20), HintFor: "node-7"}).appendWire(nil))
	add("read_resp/not_found", (&readResponse{}).appendWire(nil))
	add("read_resp/found", (&readResponse{Found: true, Set: pattern(40)}).appendWire(nil))
	add("read_resp/found_empty", (&readResponse{Found: true, Set: []byte{}}).appendWire(nil))
	add("read_resp/found_bin16", (&readResponse{Found: true, Set: pattern(1000)}).appendWire(nil))

	vctx := vclock.Vector{{Actor: vclock.Actor{Node: "n1", Epoch: 5}, Counter: 3}}
	add("forward_req/blind", lib(&forwardRequest{Key: []byte("k"), Data: []byte("v"), ContentType: "text/plain", N: 3, R: 2, W: 2, TimeoutMS: 1500}))
	add("forward_req/full", lib(&forwardRequest{Key: pattern(300), Data: pattern(70000), ContentType: "application/json", Deleted: true,
		Context: vclock.EncodeContext(vctx), N: 5, R: 3, W: 300, PR: 1, PW: 2, DW: 70000, TimeoutMS: 1 << 40, Hops: 2, SupersedeLocal: true}))
	add("forward_req/zero", lib(&forwardRequest{}))
	add("forward_req/negative", lib(&forwardRequest{Key: []byte("k"), N: -1, R: -40, W: -200, TimeoutMS: -5, Hops: -70000}))
	dot := vclock.EncodeDot(vclock.Dot{Actor: vclock.Actor{Node: "n1", Epoch: 5}, Counter: 4})
	add("forward_resp/ok", lib(&forwardResponse{Set: pattern(30), Dot: dot, Primary: 2, Fallback: 1, Durable: 0, Coordinator: "n1"}))
	add("forward_resp/ok_wide", lib(&forwardResponse{Set: pattern(300), Dot: dot, Primary: 200, Fallback: 70000, Durable: 1 << 33, Coordinator: longHint}))
	add("forward_resp/err_quorum", lib(&forwardResponse{Err: &wireError{Kind: 1, Msg: "put: quorum not met", Op: "put", Required: 2, Acks: 1,
		ReqPrim: 1, Prim: 0, ReqDur: 1, Durable: 0, Fallback: 1, Targets: 3}}))
	add("forward_resp/err_param", lib(&forwardResponse{Err: &wireError{Kind: 2, Msg: "w 4 above n 3", Param: "w"}}))
	add("forward_resp/err_other", lib(&forwardResponse{Err: &wireError{Kind: 3, Msg: "the key's siblings would exceed the size limit"}}))
	add("forward_resp/err_wide", lib(&forwardResponse{Err: &wireError{Kind: 1, Msg: longHint, Op: "delete", Required: 300, Acks: 70000,
		ReqPrim: -1, Prim: 1 << 40, ReqDur: 128, Durable: 255, Fallback: 65536, Targets: -33}}))
	add("read_many_req/two", mb(readManyRequest{P: 3, Keys: []aeKeyRef{{Hash: 1 << 60, Key: []byte("k1")}, {Hash: 7, Key: []byte("k2")}}}.encode()))
	add("read_many_req/empty", mb(readManyRequest{}.encode()))
	add("read_many_req/wide", mb(readManyRequest{P: 70000, Keys: []aeKeyRef{{Hash: math.MaxUint64, Key: pattern(300)}, {Hash: 200, Key: pattern(40)}, {Hash: 1 << 20, Key: []byte("x")}}}.encode()))
	add("read_many_resp/mixed", mb(readManyResponse{Entries: []readManyEntry{{Found: true, Set: []byte{1, 2}}, {}, {Found: true, Confirmed: true, Set: []byte{}}, {Found: true, Set: pattern(70000)}}}.encode()))
	many := make([]readManyEntry, 20)
	add("read_many_resp/array16", mb(readManyResponse{Entries: many}.encode()))
	add("merge_many_req/one", mb(mergeManyRequest{P: 255, Entries: []mergeManyEntry{{Hash: 9, Key: []byte("k"), Set: []byte("set")}}}.encode()))
	add("merge_many_req/wide", mb(mergeManyRequest{P: math.MaxUint32, Entries: []mergeManyEntry{{Hash: 1 << 35, Key: pattern(1024), Set: pattern(300)}, {Hash: 0, Key: []byte("z"), Set: []byte{}}}}.encode()))
	for _, n := range []int{0, 12, 200, 1024} {
		add("merge_many_resp/"+itoaGolden(n), mb(mergeManyResponse{Changed: n}.encode()))
	}
	add("tomb_ack_req/one", mb(tombAckRequest{P: 1, Entries: []tombAckEntry{{Hash: 5, Key: []byte("x"), Digest: 1<<64 - 1}}}.encode()))
	add("tomb_ack_req/two", mb(tombAckRequest{P: 300, Entries: []tombAckEntry{{Hash: 1 << 50, Key: pattern(50), Digest: 1}, {Hash: 127, Key: []byte("y"), Digest: 128}}}.encode()))
	add("tomb_ack_resp/three", mb(tombAckResponse{Held: []bool{true, false, true}}.encode()))
	add("tomb_ack_resp/empty", mb(tombAckResponse{}.encode()))
	held := make([]bool, 17)
	held[3] = true
	add("tomb_ack_resp/array16", mb(tombAckResponse{Held: held}.encode()))
	add("peer_status_req/clear", mb(peerStatusRequest{Clear: true}.encode()))
	add("peer_status_req/ask", mb(peerStatusRequest{}.encode()))
	add("peer_status_resp/excluded", mb(peerStatusResponse{Excluded: true}.encode()))
	add("peer_status_resp/quarantined", mb(peerStatusResponse{Quarantined: true}.encode()))
	add("peer_status_resp/none", mb(peerStatusResponse{}.encode()))
	golden.Check(t, "testdata/wire.golden", s)
}

// TestRecordGolden pins the record envelope as stored on disk.
func TestRecordGolden(t *testing.T) {
	live := testSet(t, "a", "b")
	dead := testSet(t, "a", "")
	mb := must(t)
	var s []golden.Sample
	add := func(name string, b []byte) { s = append(s, golden.Sample{Name: name, Bytes: b}) }
	add("record/live", mb(encodeRecord(3, live)))
	add("record/dead", mb(encodeRecord(300, dead)))
	add("record/empty_mint0", mb(encodeRecord(0, vclock.Set{})))
	add("record/wide_mint", mb(encodeRecord(1<<62|12345, live)))
	conf := mb(encodeRecord(7, dead))
	add("record/confirmed", mb(withTomb(conf, tombConfirmed(1700000000123))))
	add("record/confirmed_floor", mb(withTomb(conf, tombConfirmed(0))))
	golden.Check(t, "testdata/record.golden", s)
}

func itoaGolden(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
