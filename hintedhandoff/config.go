package hintedhandoff

import (
	"errors"
	"fmt"
	"time"
)

// Config configures hinted handoff. Build it from DefaultConfig or
// DefaultLocalConfig; node.Config holds it as its Hints field.
type Config struct {
	// Interval between delivery rounds: each round starts a delivery pass
	// for every target with hints that gossip sees alive and that is not
	// backing off, and expires hints past MaxAge. A peer seen alive again
	// starts a round at once. Must be positive. Default 1s (250ms in
	// DefaultLocalConfig).
	Interval time.Duration
	// Concurrency is how many hints are in flight to one target at once.
	// Must be at least 1. Default 16.
	Concurrency int
	// RatePerSecond caps hints delivered per second by this node, all
	// targets together, so delivery does not starve client traffic. 0 means
	// no cap (and no adaptation). Default 20000.
	RatePerSecond int
	// MinRatePerSecond, when positive, makes the rate adaptive between it
	// and RatePerSecond: delivery starts at MinRatePerSecond, speeds up
	// while hint merges answer about as fast as their recent minimum, and
	// halves when they take more than twice that (plus 1ms), which is when
	// delivery makes nodes queue and client requests wait (see
	// pace.Pacer in internal/pace). It is also the slowest a drain can get. 0 means
	// a fixed rate of RatePerSecond. Must not exceed RatePerSecond.
	// Default 200.
	MinRatePerSecond int
	// MaxBytesPerTarget caps the bytes of hints kept for one target: once
	// reached, new hints for it are refused (the write is not acknowledged
	// by this fallback), logged at most once per target every 10s, counted
	// in quorumkv_hints_dropped_total{reason="bytes"}, and their partitions
	// marked for anti-entropy. The check is not atomic with concurrent
	// writes, so the cap may be overshot by the writes in flight. 0 means no
	// cap. Default 1 GiB.
	MaxBytesPerTarget int64
	// MaxAge expires hints first written longer ago than this (a merge
	// into a hint keeps its age): they are deleted, counted under
	// reason="age", and the partitions the target had hints in are marked
	// for anti-entropy. Expiry runs at most once per MaxAge/64 per target,
	// so a hint may outlive MaxAge by that much. 0 means no cap. Default 72h.
	MaxAge time.Duration
	// BackoffBase is the pause before retrying a target after its first
	// failed delivery pass; it doubles with each consecutive failure up to
	// BackoffMax, with jitter over the upper half. Seeing the peer alive
	// again resets it. 0 means 1s. Default 1s (100ms in DefaultLocalConfig).
	BackoffBase time.Duration
	// BackoffMax caps that pause. It bounds how late delivery starts when
	// gossip never reported the target down. 0 means 60s. Default 60s (2s in
	// DefaultLocalConfig).
	BackoffMax time.Duration
}

// DefaultConfig returns the settings for a LAN cluster.
func DefaultConfig() Config {
	return Config{
		Interval:          time.Second,
		Concurrency:       16,
		RatePerSecond:     20000,   // ~20 MB/s of hints at 1 KiB values
		MinRatePerSecond:  200,     // a drain starts gently and learns the base latency
		MaxBytesPerTarget: 1 << 30, // 1 GiB per down primary
		MaxAge:            72 * time.Hour,
		BackoffBase:       time.Second,
		BackoffMax:        time.Minute,
	}
}

// DefaultLocalConfig is DefaultConfig with short intervals, for clusters on
// one machine (loopback) and tests.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.Interval = 250 * time.Millisecond
	c.BackoffBase = 100 * time.Millisecond
	c.BackoffMax = 2 * time.Second
	return c
}

// Validate reports the first problem with c. It never changes c.
func (c Config) Validate() error {
	if c.Interval <= 0 || c.Concurrency < 1 || c.RatePerSecond < 0 || c.MaxBytesPerTarget < 0 || c.MaxAge < 0 {
		return errors.New("interval and concurrency must be positive, rate and caps non-negative")
	}
	if c.MinRatePerSecond < 0 || (c.RatePerSecond > 0 && c.MinRatePerSecond > c.RatePerSecond) {
		return fmt.Errorf("min rate %d must be between 0 and the rate %d", c.MinRatePerSecond, c.RatePerSecond)
	}
	if c.BackoffBase < 0 || c.BackoffMax < 0 || (c.BackoffBase > 0 && c.BackoffMax > 0 && c.BackoffMax < c.BackoffBase) {
		return fmt.Errorf("backoff base %v and max %v must be non-negative, max at least base", c.BackoffBase, c.BackoffMax)
	}
	return nil
}
