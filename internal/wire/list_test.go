package wire

import (
	"errors"
	"reflect"
	"testing"
)

func TestListRoundTrip(t *testing.T) {
	for _, req := range []ListRequest{
		{Partition: 7, From: 1 << 60, Prefix: []byte("user:"), Limit: 100, Scan: 400},
		{Partition: 7, From: 1 << 60, FromKey: []byte("user:9"), HasKey: true, Limit: 100, Scan: 400},
	} {
		wantRoundTrip(t, &req, &ListRequest{})
	}
	resp := ListResponse{Entries: []ListEntry{{Hash: 1, Key: []byte("a"), Set: []byte{1, 2}}, {Hash: 2, Key: []byte("b"), Set: []byte{3}}},
		Start: []byte("a"), Resolved: true, NextKey: []byte("c"), NextHash: 3, Scanned: 7}
	wantRoundTrip(t, &resp, &ListResponse{})
}

// wantRoundTrip fails the test unless m's encoding decodes into into as
// m itself.
func wantRoundTrip(t *testing.T, m, into message) {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := into.Decode(b); err != nil || !reflect.DeepEqual(into, m) {
		t.Fatalf("%T: got %+v, %v; want %+v", m, into, err, m)
	}
}

func TestListRequestLimits(t *testing.T) {
	for _, req := range []ListRequest{{Limit: 0, Scan: 1}, {Limit: MaxBatch + 1, Scan: MaxListScan}, {Limit: 10, Scan: 5}, {Limit: 1, Scan: MaxListScan + 1}} {
		if _, err := req.Append(nil); err == nil {
			t.Errorf("Append(%+v) accepted", req)
		}
		// A peer that skips the check is refused by the decoder.
		b := AppendArrayLen(nil, 7)
		b = AppendUint32Fixed(b, 0)
		b = AppendUint64Fixed(b, 0)
		b = AppendBin(b, nil)
		b = AppendBool(b, false)
		b = AppendBin(b, nil)
		b = AppendInt(b, int64(req.Limit))
		b = AppendInt(b, int64(req.Scan))
		var got ListRequest
		if err := got.Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%+v) = %v, want ErrMalformed", req, err)
		}
	}
	big := ListResponse{Entries: make([]ListEntry, MaxBatch+1)}
	if _, err := big.Append(nil); err == nil {
		t.Error("response over MaxBatch accepted")
	}
}

func FuzzListDecode(f *testing.F) {
	req, _ := (&ListRequest{Partition: 1, From: 2, Prefix: []byte("p"), Limit: 3, Scan: 9}).Append(nil)
	resp, _ := (&ListResponse{Entries: []ListEntry{{Hash: 1, Key: []byte("k"), Set: []byte{0}}}, NextKey: []byte("m"), NextHash: 9, Done: true}).Append(nil)
	f.Add(req)
	f.Add(resp)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkReencode(t, &ListRequest{}, b)
		checkReencode(t, &ListResponse{}, b)
	})
}
