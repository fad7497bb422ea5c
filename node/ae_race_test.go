//go:build race

package node_test

// aeRace is true under the race detector, which makes the 100,000-key
// byte-count test take ~20 s; it runs without -race (same code paths as
// the smaller tests, which do run under it).
const aeRace = true

// chaosRace is true under the race detector: TestChaosReplays then skips
// (25 s there). TestChaos runs the same code under it; the replay check
// itself runs without -race.
const chaosRace = true
