package api

import (
	"strings"
	"testing"
	"time"
)

func TestParseTTL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{"2d", 48 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"", 0, false},
		{"0s", 0, false},
		{"-5s", 0, false},
		{"0d", 0, false},
		{"-2d", 0, false},
		{"+2d", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"2days", 0, false},
		{"1d12h", 0, false},
		{"10", 0, false},
		{"999999999999d", 0, false},
		{"9223372036854775807d", 0, false},
		{"2000000h", 2000000 * time.Hour, true},
		{"3000000h", 0, false},
	} {
		got, err := ParseTTL(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// An out-of-range duration is named as such, not as bad syntax.
func TestParseTTLMessages(t *testing.T) {
	for in, want := range map[string]string{
		"3000000h":              "too long",
		"2562048h":              "too long",
		"99999999999999999999s": "too long",
		"999999999999d":         "too long",
		"abc":                   "want a duration",
		"1.5d":                  "want whole days",
		"-5s":                   "must be positive",
	} {
		_, err := ParseTTL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTTL(%q) error %v, want it to say %q", in, err, want)
		}
	}
}

func TestFormatRemaining(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:                     "30s",
		29*time.Second + 1:                   "29.001s",
		time.Nanosecond:                      "1ms",
		0:                                    "1ms",
		48*time.Hour + 1500*time.Millisecond: "48h0m1.5s",
	} {
		if got := FormatRemaining(d); got != want {
			t.Errorf("FormatRemaining(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(FormatRemaining(d)); err != nil || back < d {
			t.Errorf("FormatRemaining(%v) parses back to %v, %v", d, back, err)
		}
	}
}
