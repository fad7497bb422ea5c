package api

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// durationSyntax is what time.ParseDuration accepts: a duration of that
// form it refuses is out of range, which deserves its own message.
var durationSyntax = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)

// ParseTTL reads a time to live as PUT /kv/{key}?ttl= and the CLI's --ttl
// take it: a Go duration ("30s", "1h30m", "250ms") or a whole number of
// days ("2d"). It must be positive; the node refuses one whose deadline
// would pass the year 2262.
func ParseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty time to live: want a duration such as 30s, 1h or 2d")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 63) // digits only: no sign
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("time to live %q: want whole days such as 2d, or a Go duration such as 36h", s)
		}
		if err != nil || n > math.MaxInt64/uint64(24*time.Hour) {
			return 0, fmt.Errorf("time to live %q: too long", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			if durationSyntax.MatchString(s) {
				return 0, fmt.Errorf("time to live %q: too long (at most %s)", s, time.Duration(math.MaxInt64).Truncate(time.Hour))
			}
			return 0, fmt.Errorf("time to live %q: want a duration such as 30s, 1h or 2d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("time to live %q: must be positive", s)
	}
	return d, nil
}

// FormatRemaining writes the time a value has left (HeaderExpires): a Go
// duration rounded up to whole milliseconds, never below 1ms, so that a
// live value never says 0.
func FormatRemaining(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return (max(ms, 1) * time.Millisecond).String()
}
