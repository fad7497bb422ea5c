//go:build race

package transport

// raceEnabled reports a -race build, which slows a process several times
// over; timing bounds meant for a normal build are skipped under it.
const raceEnabled = true
