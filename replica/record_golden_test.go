package replica

import (
	"testing"

	"github.com/quorumkv/quorumkv/internal/golden"
	"github.com/quorumkv/quorumkv/vclock"
)

// TestRecordGolden pins the record envelope as stored on disk.
func TestRecordGolden(t *testing.T) {
	live := testSet(t, "a", "b")
	dead := testSet(t, "a", "")
	mb := golden.Must(t)
	var s []golden.Sample
	add := func(name string, b []byte) { s = append(s, golden.Sample{Name: name, Bytes: b}) }
	add("record/live", mb(EncodeRecord(3, live)))
	add("record/dead", mb(EncodeRecord(300, dead)))
	add("record/empty_mint0", mb(EncodeRecord(0, vclock.Set{})))
	add("record/wide_mint", mb(EncodeRecord(1<<62|12345, live)))
	conf := mb(EncodeRecord(7, dead))
	add("record/confirmed", mb(WithTomb(conf, TombConfirmed(1700000000123))))
	add("record/confirmed_floor", mb(WithTomb(conf, TombConfirmed(0))))
	expiring, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "a", Epoch: 1},
		vclock.Value{Data: []byte("v"), Timestamp: 1, Expires: 1700000000123456789})
	add("record/expiring", mb(EncodeRecord(4, expiring)))
	golden.Check(t, "testdata/record.golden", s)
}
