package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
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
