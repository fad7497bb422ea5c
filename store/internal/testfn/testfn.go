// Package testfn holds the update functions and the lock-holding writer
// that the store's own tests and the storetest conformance suite share. It
// does not import package store, so that store's internal tests can import
// it; its functions have the shape of store.UpdateFunc.
package testfn

import "strconv"

// Incr is an update function that counts: it stores 1 for a missing key,
// and the stored decimal number plus one otherwise.
func Incr(old []byte, found bool) ([]byte, error) {
	n := 0
	if found {
		var err error
		if n, err = strconv.Atoi(string(old)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// Holder is a writer that holds a key's lock until Release: its update
// function, once called, blocks until then.
type Holder struct {
	release chan struct{}
	done    chan error
}

// Hold starts update in a goroutine, with an update function that blocks
// until Release and then writes value, and returns once that function was
// called: from then on the writer holds the key's lock (or once update
// failed without calling it: Release then returns its error). update
// returns the write's error.
func Hold(update func(fn func(old []byte, found bool) ([]byte, error)) error, value string) *Holder {
	h := &Holder{release: make(chan struct{}), done: make(chan error, 1)}
	entered := make(chan struct{})
	go func() {
		h.done <- update(func([]byte, bool) ([]byte, error) {
			close(entered)
			<-h.release
			return []byte(value), nil
		})
	}()
	select {
	case <-entered:
	case err := <-h.done: // update failed before it called the function
		h.done <- err
	}
	return h
}

// Release lets the holder's update function return and returns the
// holder's write error once the write ended. Call it once.
func (h *Holder) Release() error {
	close(h.release)
	return <-h.done
}
