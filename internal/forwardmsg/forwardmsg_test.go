package forwardmsg

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

// A coordinator's failures come back from a forward as the same types
// with the same counts.
func TestErrorsRoundTrip(t *testing.T) {
	qe := &quorum.QuorumError{Op: "put", Required: 2, Acks: 1, RequiredPrimary: 1, PrimaryAcks: 1,
		RequiredDurable: 1, DurableAcks: 0, FallbackAcks: 1, Targets: 3}
	got := FromWire("n2", ToWire(qe))
	var gq *quorum.QuorumError
	if !errors.As(got, &gq) || gq.Op != "put" || gq.Required != 2 || gq.Acks != 1 || gq.RequiredPrimary != 1 ||
		gq.PrimaryAcks != 1 || gq.RequiredDurable != 1 || gq.FallbackAcks != 1 || gq.Targets != 3 || len(gq.Errs) != 1 {
		t.Errorf("quorum error came back as %#v", got)
	}
	pe := &quorum.ParamError{Param: "w", Msg: "w=9: more than n"}
	if got := FromWire("n2", ToWire(pe)); !reflect.DeepEqual(got, error(pe)) {
		t.Errorf("param error came back as %#v", got)
	}
	ce := &siblings.CapError{Siblings: 5, Bytes: 900, MaxCount: 4, MaxBytes: 800}
	if got := FromWire("n2", ToWire(ce)); !reflect.DeepEqual(got, error(ce)) {
		t.Errorf("sibling cap error came back as %#v", got)
	}
	if got := FromWire("n2", ToWire(errors.New("disk on fire"))); got == nil || got.Error() != "coordinator n2: disk on fire" {
		t.Errorf("other error came back as %v", got)
	}
}

// A forwarded write's request carries its fields and the time left; the
// coordinator's result comes back whole, zones only when asked for.
func TestRequestAndResultRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := quorum.PutRequest{Key: []byte("k"), Value: vclock.Value{Data: []byte("v"), Expires: 7},
		Params: quorum.Params{N: 3, R: 2, W: 2, PZ: 2}, Hops: 1, SupersedeLocal: true}
	fr := Request(ctx, req)
	if string(fr.Key) != "k" || string(fr.Data) != "v" || fr.Expires != 7 || fr.N != 3 || fr.W != 2 || fr.PZ != 2 ||
		fr.Hops != 1 || !fr.SupersedeLocal || fr.TimeoutMS <= 0 || fr.TimeoutMS > 60000 {
		t.Errorf("request %+v", fr)
	}
	if fr := Request(context.Background(), req); fr.TimeoutMS != 0 {
		t.Errorf("no deadline, yet a timeout of %d ms", fr.TimeoutMS)
	}
	set, dot := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "n1", Epoch: 1}, req.Value)
	res := &quorum.WriteResult{Set: set, Dot: dot, Coordinator: "n1", Acks: quorum.Acks{Primary: 2, Durable: 1, Zones: 2}}
	for _, zones := range []bool{false, true} {
		b, err := Response(res, zones)
		if err != nil {
			t.Fatal(err)
		}
		var resp wire.ForwardResponse
		if err := resp.Decode(b); err != nil {
			t.Fatal(err)
		}
		got, err := Result("n1", &resp)
		if err != nil {
			t.Fatal(err)
		}
		want := *res
		if !zones {
			want.Acks.Zones = 0
		}
		if got.Dot != want.Dot || got.Coordinator != want.Coordinator || got.Acks != want.Acks || len(got.Set.Siblings) != 1 {
			t.Errorf("zones=%v: result %+v, want %+v", zones, got, want)
		}
	}
	if _, err := Result("n1", &wire.ForwardResponse{Set: []byte{0xff}}); err == nil {
		t.Error("a bad set decoded")
	}
}
