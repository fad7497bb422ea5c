package connlimit

// Test views (compiled only with the tests).

// OpenFrom returns the connections open now from source.
func (l *Listener) OpenFrom(source string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources[source]
}
