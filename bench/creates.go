package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

// Creator is a Client that can also make create-only writes (HTTP
// If-None-Match: *, RESP SET NX), the seam of RaceCreates.
type Creator interface {
	Client
	// Create writes value under key through node coord with N and W from
	// q, only if a read at q.R finds no live value. created is false, with
	// a nil error, when that read found one and nothing was written.
	Create(ctx context.Context, coord int, key string, value []byte, q Quorum) (created bool, err error)
}

// CreatesConfig is a racing-creates run: for each of Keys fresh keys,
// Racers clients start a create-only write of the same key at the same
// moment, each through another coordinator.
type CreatesConfig struct {
	// Keys is how many keys are raced for (1 to MaxKeys). Default 1000.
	Keys int
	// Racers is how many creates race for each key (2 to 16), through
	// coordinators racer % Coordinators(). Default 2.
	Racers int
	// Concurrency is how many keys are raced for at once (1 to
	// MaxConcurrency). Default 4.
	Concurrency int
	// KeyPrefix is prepended to the keys ("<prefix><N-R-W>/<i>"). Default
	// "bench-create/"; runs should not share it with earlier ones, as a
	// key already created refuses every racer.
	KeyPrefix string
	// Timeout bounds each request (0: only ctx). Default 5s.
	Timeout time.Duration
}

// DefaultCreatesConfig returns 1000 keys raced by 2 creates, 4 at a time.
func DefaultCreatesConfig() CreatesConfig {
	return CreatesConfig{Keys: 1000, Racers: 2, Concurrency: 4, KeyPrefix: "bench-create/", Timeout: 5 * time.Second}
}

// Validate checks the ranges.
func (c CreatesConfig) Validate() error {
	switch {
	case c.Keys < 1 || c.Keys > MaxKeys:
		return fmt.Errorf("racing creates: keys %d, want 1 to %d: %w", c.Keys, MaxKeys, ErrInvalidConfig)
	case c.Racers < 2 || c.Racers > 16:
		return fmt.Errorf("racing creates: racers %d, want 2 to 16: %w", c.Racers, ErrInvalidConfig)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("racing creates: concurrency %d, want 1 to %d: %w", c.Concurrency, MaxConcurrency, ErrInvalidConfig)
	case c.Timeout < 0:
		return fmt.Errorf("racing creates: negative timeout: %w", ErrInvalidConfig)
	}
	return nil
}

// CreatesResult is what one setting's racing creates measured.
type CreatesResult struct {
	Quorum Quorum `json:"quorum"`
	Keys   int    `json:"keys"`
	Racers int    `json:"racers"`
	// Won counts keys by how many of their racers' creates succeeded:
	// Won[0] none (every racer failed or was refused), Won[1] exactly one
	// (the create-only promise held), Won[k] k racers.
	Won []int `json:"won"`
	// Multiple is the keys more than one create succeeded for, and Rate
	// their share of Keys.
	Multiple int     `json:"multiple"`
	Rate     float64 `json:"rate"`
	// Errors counts creates that failed (not refusals).
	Errors int `json:"errors"`
	// Lost counts keys whose final read at R=N missed a value an
	// acknowledged create wrote (must be 0: a racing create becomes a
	// sibling, never overwrites unseen), and Unchecked the keys whose
	// final read failed.
	Lost      int           `json:"lost"`
	Unchecked int           `json:"unchecked"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// RaceCreates runs the racing-creates workload for one setting and reads
// every key back at R=N.
func RaceCreates(ctx context.Context, c Creator, cfg CreatesConfig, q Quorum) (*CreatesResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	coords := c.Coordinators()
	if coords < 1 {
		return nil, fmt.Errorf("racing creates: no coordinator: %w", ErrInvalidConfig)
	}
	prefix := cfg.KeyPrefix + strconv.Itoa(q.N) + "-" + strconv.Itoa(q.R) + "-" + strconv.Itoa(q.W) + "/"
	res := &CreatesResult{Quorum: q, Keys: cfg.Keys, Racers: cfg.Racers, Won: make([]int, cfg.Racers+1)}
	var mu sync.Mutex
	reqCtx := func() (context.Context, context.CancelFunc) {
		if cfg.Timeout > 0 {
			return context.WithTimeout(ctx, cfg.Timeout)
		}
		return context.WithCancel(ctx)
	}
	race := func(i int) {
		key := prefix + strconv.Itoa(i)
		start := make(chan struct{})
		created := make([]bool, cfg.Racers)
		errs := 0
		var wg sync.WaitGroup
		for r := range cfg.Racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rc, cancel := reqCtx()
				defer cancel()
				ok, err := c.Create(rc, (i+r)%coords, key, []byte("racer-"+strconv.Itoa(r)), q)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs++
				}
				created[r] = ok
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, ok := range created {
			if ok {
				won++
			}
		}
		rc, cancel := reqCtx()
		read, err := c.Get(rc, i%coords, key, q, true)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		res.Won[won]++
		res.Errors += errs
		if err != nil {
			res.Unchecked++
			return
		}
		for r, ok := range created {
			want := []byte("racer-" + strconv.Itoa(r))
			if ok && !slices.ContainsFunc(read.Values, func(v []byte) bool { return string(v) == string(want) }) {
				res.Lost++
				return
			}
		}
	}
	begin := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				race(i)
			}
		}()
	}
	for i := 0; i < cfg.Keys && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	res.Elapsed = time.Since(begin)
	res.Keys = 0 // the keys raced for: fewer than asked if ctx ended the run
	for k, n := range res.Won {
		res.Keys += n
		if k >= 2 {
			res.Multiple += n
		}
	}
	if res.Keys > 0 {
		res.Rate = float64(res.Multiple) / float64(res.Keys)
	}
	return res, ctx.Err()
}

// WriteCreatesText prints racing-creates results as a table, one row per
// setting.
func WriteCreatesText(w io.Writer, rs []*CreatesResult) error {
	if _, err := fmt.Fprintln(w, "RACING CREATES (create-only writes racing through different coordinators)"); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N/R/W\tkeys\tracers\tnone won\tone won\tseveral won\tseveral %\terrors\tlost\tunchecked\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t\n", r.Quorum, r.Keys, r.Racers, r.Won[0], r.Won[1], r.Multiple, 100*r.Rate, r.Errors, r.Lost, r.Unchecked)
	}
	return tw.Flush()
}
