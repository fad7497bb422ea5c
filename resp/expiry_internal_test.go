package resp

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/quorum"
)

// words splits a command line's arguments on spaces.
func words(s string) [][]byte {
	var out [][]byte
	for _, w := range strings.Fields(s) {
		out = append(out, []byte(w))
	}
	return out
}

func TestParseSetArgs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		exp     expiry
		keep    bool
		cond    setCond
		get     bool
		rest    string
		wantErr string
	}{
		{in: ""},
		{in: "W 2 R 1", rest: "W 2 R 1"},
		{in: "EX 10", exp: expiry{ttl: 10 * time.Second}},
		{in: "ex 10 w 3", exp: expiry{ttl: 10 * time.Second}, rest: "w 3"},
		{in: "W 3 PX 1500", exp: expiry{ttl: 1500 * time.Millisecond}, rest: "W 3"},
		{in: "EXAT 2000000000", exp: expiry{at: 2000000000 * int64(time.Second)}},
		{in: "PXAT 4102444800000", exp: expiry{at: 4102444800000 * int64(time.Millisecond)}}, // 2100: no 2038
		{in: "KEEPTTL", keep: true},
		{in: "NX EX 5", exp: expiry{ttl: 5 * time.Second}, cond: setNX},
		{in: "XX GET", cond: setXX, get: true},
		{in: "EX 0", wantErr: "invalid expire time"},
		{in: "EX -5", wantErr: "invalid expire time"},
		{in: "EX ten", wantErr: "invalid expire time"},
		{in: "EX 9223372036854775807", wantErr: "invalid expire time"},
		{in: "PXAT 9223372036854776", wantErr: "invalid expire time"},
		{in: "EX", wantErr: "EX needs a value"},
		{in: "EX 1 PX 1", wantErr: "EX and PX given together"},
		{in: "KEEPTTL EX 1", wantErr: "KEEPTTL and EX given together"},
		{in: "NX XX", wantErr: "NX and XX"},
		{in: "GET GET", wantErr: "GET given twice"},
		{in: "W", rest: "W"}, // left to parseOptions ("needs a value")
	} {
		a, err := parseSetArgs(words(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || a.exp != tc.exp || a.keepTTL != tc.keep || a.cond != tc.cond || a.get != tc.get ||
			string(bytes.Join(a.rest, []byte(" "))) != tc.rest {
			t.Errorf("%q: %+v, %v", tc.in, a, err)
		}
	}
	_, err := parseSetArgs(words("EX 0"))
	var pe *quorum.ParamError
	if !errors.As(err, &pe) {
		t.Fatalf("a bad time is %T, want a parameter error", err)
	}
}

func TestExpireCond(t *testing.T) {
	const none = 0
	for _, tc := range []struct {
		cond      expireCond
		cur, next int64
		want      bool
	}{
		{expireAlways, none, 5, true},
		{expireAlways, 9, 5, true},
		{expireNX, none, 5, true},
		{expireNX, 9, 5, false},
		{expireXX, none, 5, false},
		{expireXX, 9, 5, true},
		{expireGT, none, 5, false}, // no deadline counts as infinite
		{expireGT, 4, 5, true},
		{expireGT, 5, 5, false},
		{expireLT, none, 5, true},
		{expireLT, 6, 5, true},
		{expireLT, 5, 5, false},
	} {
		if got := tc.cond.allows(tc.cur, tc.next); got != tc.want {
			t.Errorf("cond %d: allows(%d, %d) = %v", tc.cond, tc.cur, tc.next, got)
		}
	}
	c, rest, err := parseExpireCond(words("gt W 2"))
	if c != expireGT || string(bytes.Join(rest, []byte(" "))) != "W 2" || err != nil {
		t.Fatalf("parseExpireCond = %v, %q, %v", c, rest, err)
	}
	if _, _, err := parseExpireCond(words("NX XX")); err == nil {
		t.Fatal("NX XX accepted")
	}
}

func TestRemaining(t *testing.T) {
	s := int64(time.Second)
	for _, tc := range []struct {
		at, now int64
		unit    time.Duration
		want    int64
	}{
		{0, 100, time.Second, -1},
		{0, 100, time.Millisecond, -1},
		{10 * s, 0, time.Second, 10},
		{10 * s, s / 2, time.Second, 10}, // 9.5 s rounds as Redis does
		{10 * s, s/2 + 1, time.Second, 9},
		{10 * s, 0, time.Millisecond, 10000},
		{10 * s, 10*s - 1, time.Millisecond, 0},
		{10 * s, 11 * s, time.Millisecond, 0},
		{math.MaxInt64, 0, time.Second, 9223372037}, // 2262, rounded
	} {
		if got := remaining(tc.at, tc.now, tc.unit); got != tc.want {
			t.Errorf("remaining(%d, %d, %v) = %d, want %d", tc.at, tc.now, tc.unit, got, tc.want)
		}
	}
}
