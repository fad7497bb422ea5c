package wire

import (
	"bytes"
	"math"
	"testing"

	"github.com/quorumkv/quorumkv/internal/golden"
)

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
	mb := golden.Must(t)
	enc := func(m interface{ Append([]byte) ([]byte, error) }) []byte { return mb(m.Append(nil)) }
	longHint := string(bytes.Repeat([]byte("h"), 40))
	var s []golden.Sample
	add := func(name string, b []byte) { s = append(s, golden.Sample{Name: name, Bytes: b}) }

	add("merge_req/small", mb((&MergeRequest{Partition: 3, Hash: 1 << 40, Key: []byte("key"), Set: []byte{1, 2, 3}}).Append(nil)))
	add("merge_req/hint_nil_set_durable", mb((&MergeRequest{Key: []byte("k"), HintFor: "n2", Durable: true}).Append(nil)))
	add("merge_req/wide", mb((&MergeRequest{Partition: math.MaxUint32, Hash: math.MaxUint64, Key: pattern(300), HintFor: longHint, Set: pattern(300)}).Append(nil)))
	add("merge_req/bin32_set", mb((&MergeRequest{Partition: 7, Hash: 9, Key: []byte("big"), Set: pattern(70000)}).Append(nil)))
	add("merge_req/empty_set", mb((&MergeRequest{Partition: 1, Hash: 2, Key: []byte("e"), Set: []byte{}}).Append(nil)))
	add("merge_resp/false", mb((&MergeResponse{}).Append(nil)))
	add("merge_resp/true", mb((&MergeResponse{Durable: true}).Append(nil)))
	add("read_req/plain", mb((&ReadRequest{Partition: 3, Hash: 9, Key: []byte("key")}).Append(nil)))
	add("read_req/hint", mb((&ReadRequest{Partition: 255, Hash: 1 << 63, Key: pattern(20), HintFor: "node-7"}).Append(nil)))
	add("read_resp/not_found", mb((&ReadResponse{}).Append(nil)))
	add("read_resp/found", mb((&ReadResponse{Found: true, Set: pattern(40)}).Append(nil)))
	add("read_resp/found_empty", mb((&ReadResponse{Found: true, Set: []byte{}}).Append(nil)))
	add("read_resp/found_bin16", mb((&ReadResponse{Found: true, Set: pattern(1000)}).Append(nil)))

	add("forward_req/blind", enc(&ForwardRequest{Key: []byte("k"), Data: []byte("v"), ContentType: "text/plain", N: 3, R: 2, W: 2, TimeoutMS: 1500}))
	add("forward_req/full", enc(&ForwardRequest{Key: pattern(300), Data: pattern(70000), ContentType: "application/json", Deleted: true,
		Context: "AZGTom4xBQM" /* vclock.EncodeContext of [n1#5:3] */, N: 5, R: 3, W: 300, PR: 1, PW: 2, DW: 70000, TimeoutMS: 1 << 40, Hops: 2, SupersedeLocal: true}))
	add("forward_req/zero", enc(&ForwardRequest{}))
	add("forward_req/expiring", enc(&ForwardRequest{Key: []byte("k"), Data: []byte("v"), N: 3, R: 2, W: 2, TimeoutMS: 1500, Expires: 1700000000123456789}))
	add("forward_req/negative", enc(&ForwardRequest{Key: []byte("k"), N: -1, R: -40, W: -200, TimeoutMS: -5, Hops: -70000}))
	const dot = "AZOibjEFBA" // vclock.EncodeDot of n1#5:4; the token is opaque here
	add("forward_resp/ok", enc(&ForwardResponse{Set: pattern(30), Dot: dot, Primary: 2, Fallback: 1, Durable: 0, Coordinator: "n1"}))
	add("forward_resp/ok_wide", enc(&ForwardResponse{Set: pattern(300), Dot: dot, Primary: 200, Fallback: 70000, Durable: 1 << 33, Coordinator: longHint}))
	add("forward_resp/err_quorum", enc(&ForwardResponse{Err: &Error{Kind: KindQuorum, Msg: "put: quorum not met", Op: "put", Required: 2, Acks: 1,
		ReqPrim: 1, Prim: 0, ReqDur: 1, Durable: 0, Fallback: 1, Targets: 3}}))
	add("forward_resp/err_param", enc(&ForwardResponse{Err: &Error{Kind: KindParam, Msg: "w 4 above n 3", Param: "w"}}))
	add("forward_resp/err_other", enc(&ForwardResponse{Err: &Error{Kind: KindOther, Msg: "the key's siblings would exceed the size limit"}}))
	add("forward_req/zones", enc(&ForwardRequest{Key: []byte("k"), Data: []byte("v"), N: 3, R: 2, W: 2, TimeoutMS: 1500, PZ: 2}))
	add("forward_req/zones_expiring", enc(&ForwardRequest{Key: []byte("k"), Data: []byte("v"), N: 3, R: 2, W: 2, TimeoutMS: 1500, Expires: 1700000000123456789, PZ: 3}))
	add("forward_resp/zones", enc(&ForwardResponse{Set: pattern(30), Dot: "d", Primary: 2, Fallback: 1, Coordinator: "n1", Zones: 2}))
	add("forward_resp/err_wide", enc(&ForwardResponse{Err: &Error{Kind: KindQuorum, Msg: longHint, Op: "delete", Required: 300, Acks: 70000,
		ReqPrim: -1, Prim: 1 << 40, ReqDur: 128, Durable: 255, Fallback: 65536, Targets: -33}}))
	add("read_many_req/two", enc(&ReadManyRequest{Partition: 3, Keys: []KeyRef{{Hash: 1 << 60, Key: []byte("k1")}, {Hash: 7, Key: []byte("k2")}}}))
	add("read_many_req/empty", enc(&ReadManyRequest{}))
	add("read_many_req/wide", enc(&ReadManyRequest{Partition: 70000, Keys: []KeyRef{{Hash: math.MaxUint64, Key: pattern(300)}, {Hash: 200, Key: pattern(40)}, {Hash: 1 << 20, Key: []byte("x")}}}))
	add("read_many_resp/mixed", enc(&ReadManyResponse{Entries: []ReadManyEntry{{Found: true, Set: []byte{1, 2}}, {}, {Found: true, Confirmed: true, Set: []byte{}}, {Found: true, Set: pattern(70000)}}}))
	many := make([]ReadManyEntry, 20)
	add("read_many_resp/array16", enc(&ReadManyResponse{Entries: many}))
	add("merge_many_req/one", enc(&MergeManyRequest{Partition: 255, Entries: []MergeManyEntry{{Hash: 9, Key: []byte("k"), Set: []byte("set")}}}))
	add("merge_many_req/wide", enc(&MergeManyRequest{Partition: math.MaxUint32, Entries: []MergeManyEntry{{Hash: 1 << 35, Key: pattern(1024), Set: pattern(300)}, {Hash: 0, Key: []byte("z"), Set: []byte{}}}}))
	for _, n := range []int{0, 12, 200, 1024} {
		add("merge_many_resp/"+itoaGolden(n), enc(&MergeManyResponse{Changed: n}))
	}
	add("tomb_ack_req/one", enc(&TombAckRequest{Partition: 1, Entries: []TombAckEntry{{Hash: 5, Key: []byte("x"), Digest: 1<<64 - 1}}}))
	add("tomb_ack_req/two", enc(&TombAckRequest{Partition: 300, Entries: []TombAckEntry{{Hash: 1 << 50, Key: pattern(50), Digest: 1}, {Hash: 127, Key: []byte("y"), Digest: 128}}}))
	add("tomb_ack_resp/three", enc(&TombAckResponse{Held: []bool{true, false, true}}))
	add("tomb_ack_resp/empty", enc(&TombAckResponse{}))
	held := make([]bool, 17)
	held[3] = true
	add("tomb_ack_resp/array16", enc(&TombAckResponse{Held: held}))
	add("peer_status_req/clear", enc(&PeerStatusRequest{Clear: true}))
	add("peer_status_req/ask", enc(&PeerStatusRequest{}))
	add("peer_status_resp/excluded", enc(&PeerStatusResponse{Excluded: true}))
	add("peer_status_resp/quarantined", enc(&PeerStatusResponse{Quarantined: true}))
	add("peer_status_resp/none", enc(&PeerStatusResponse{}))
	golden.Check(t, "testdata/messages.golden", s)
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
