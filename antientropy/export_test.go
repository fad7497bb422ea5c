package antientropy

import "time"

// Scheduler's test views (compiled only with the tests: nothing else reads
// them).

// LastExchange returns when partition p last completed an exchange (zero:
// never); ok is false if p is unknown.
func (s *Scheduler[P]) LastExchange(p uint32) (last time.Time, ok bool) {
	sp := s.parts[p]
	if sp == nil {
		return time.Time{}, false
	}
	return sp.last, true
}

// Running returns the running job, if any.
func (s *Scheduler[P]) Running() (Job[P], bool) { return s.job, s.running }
