package wire

import (
	"bytes"
	"testing"
)

// A checked merge's answer round-trips, its bytes pinned here (the golden
// file predates it), and a MergeResponse is not one.
func TestMergeCheckResponse(t *testing.T) {
	for _, tc := range []struct {
		m    MergeCheckResponse
		want []byte
	}{
		{MergeCheckResponse{Durable: true, Clean: true}, []byte{0x93, 0xc3, 0xc3, 0xc0}},
		{MergeCheckResponse{Prior: []byte{1, 2}}, []byte{0x93, 0xc2, 0xc2, 0xc4, 2, 1, 2}},
	} {
		b, err := tc.m.Append(nil)
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Fatalf("%+v encodes as %x, %v; want %x", tc.m, b, err, tc.want)
		}
		var got MergeCheckResponse
		if err := got.Decode(b); err != nil || got.Durable != tc.m.Durable || got.Clean != tc.m.Clean || !bytes.Equal(got.Prior, tc.m.Prior) {
			t.Fatalf("%x decodes as %+v, %v; want %+v", b, got, err, tc.m)
		}
		if err := got.Decode(b[:len(b)-1]); err == nil {
			t.Fatalf("truncated %x decoded", b[:len(b)-1])
		}
	}
	old, _ := (&MergeResponse{Durable: true}).Append(nil)
	var got MergeCheckResponse
	if err := got.Decode(old); err == nil {
		t.Fatalf("a MergeResponse %x decoded as a MergeCheckResponse", old)
	}
	if MethodMergeCheck != 15 {
		t.Fatalf("MethodMergeCheck is %d, on the wire as 15", MethodMergeCheck)
	}
}
