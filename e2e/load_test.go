package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadClient keeps enough idle connections for the concurrent writers and
// readers of the hints and anti-entropy tests (the harness's client keeps
// two per host).
var loadClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
	Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 64,
}}

type answer struct {
	status  int
	body    []byte
	context string
}

// loadReq sends one request through loadClient; status 0 means it failed.
func loadReq(ctx context.Context, method, url string, body []byte) answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	res, err := loadClient.Do(req)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	return answer{status: res.StatusCode, body: b, context: res.Header.Get(hContext)}
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// outcomeUnknown reports whether a write's answer leaves its outcome
// unknown: no answer (status 0: a timeout, a connection reset) or a 503 (a
// replica's connection lost, its call timed out, the quorum not met). Such
// a write may have landed on some replicas and may appear later, or never:
// it is not acknowledged, so a test counts it as maybe written (see
// maybeWritten) and never fails on it. A loaded 2-core machine produces a
// few of them in a load of thousands of writes.
func outcomeUnknown(status int) bool {
	return status == 0 || status == http.StatusServiceUnavailable
}

// stopped reports whether stop is closed, without waiting: the check at
// the top of each round of a load loop that runs until stop.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// sleepUnless waits d and reports true, or reports false as soon as stop
// closes: the pause between rounds of a loop that runs until stop.
func sleepUnless(stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

// errMaybe is a write's error when its outcome is unknown; ignoreMaybe
// drops it, so that parallel goes on with the next write.
var errMaybe = errors.New("outcome unknown")

func ignoreMaybe(err error) error {
	if errors.Is(err, errMaybe) {
		return nil
	}
	return err
}

// putAll PUTs value(i) at url(i) for i in [0, keys) on workers goroutines.
// Each write must answer 204 or leave its outcome unknown (outcomeUnknown):
// those are returned as maybe written; any other answer fails the test.
func putAll(t *testing.T, keys, workers int, url func(i int) string, value func(i int) []byte) *maybeWritten {
	t.Helper()
	maybe := &maybeWritten{}
	if err := parallel(keys, workers, func(i int) error {
		status, _, b := do(t, "PUT", url(i), value(i), nil)
		if outcomeUnknown(status) {
			maybe.add(i)
		} else if status != 204 {
			return fmt.Errorf("PUT %s: %d %s", url(i), status, b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return maybe
}

// valueV is key i's value "v<i>", for putAll.
func valueV(i int) []byte { return []byte(fmt.Sprint("v", i)) }

// maybeWritten is the set of key indexes whose writes' outcome is unknown
// (outcomeUnknown): a check may find them present with the written value,
// or absent, never anything else.
type maybeWritten struct {
	mu sync.Mutex
	m  map[int]bool
}

func (s *maybeWritten) add(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int]bool{}
	}
	s.m[i] = true
}

func (s *maybeWritten) has(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[i]
}

func (s *maybeWritten) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
