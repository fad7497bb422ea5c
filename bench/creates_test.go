package bench

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// createStore is a Creator over a map. Keys whose index is even skip the
// existence check (two creates racing past each other's read); with
// overwrite, a create replaces what the key holds instead of adding a
// sibling (the bug the final read catches).
type createStore struct {
	mu        sync.Mutex
	vals      map[string][][]byte
	overwrite bool
}

func (s *createStore) Coordinators() int { return 3 }

func (s *createStore) Get(_ context.Context, _ int, key string, _ Quorum, _ bool) (ReadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ReadResult{Found: len(s.vals[key]) > 0, Values: s.vals[key]}, nil
}

func (s *createStore) Put(context.Context, int, string, []byte, string, Quorum) (WriteResult, error) {
	return WriteResult{}, errors.New("not used")
}

func (s *createStore) Create(_ context.Context, _ int, key string, value []byte, _ Quorum) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := strconv.Atoi(key[strings.LastIndexByte(key, '/')+1:])
	if len(s.vals[key]) > 0 && i%2 == 1 {
		return false, nil
	}
	if s.overwrite {
		s.vals[key] = nil
	}
	s.vals[key] = append(s.vals[key], bytes.Clone(value))
	return true, nil
}

func TestRaceCreates(t *testing.T) {
	cfg := DefaultCreatesConfig()
	cfg.Keys = 100
	q := Quorum{N: 3, R: 2, W: 2}
	res, err := RaceCreates(t.Context(), &createStore{vals: map[string][][]byte{}}, cfg, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != 100 || res.Multiple != 50 || res.Won[1] != 50 || res.Rate != 0.5 || res.Lost != 0 || res.Errors != 0 {
		t.Fatalf("result %+v: want 50 keys won by both racers, 50 by one, none lost", res)
	}
	res, err = RaceCreates(t.Context(), &createStore{vals: map[string][][]byte{}, overwrite: true}, cfg, q)
	if err != nil || res.Lost != 50 {
		t.Fatalf("overwriting store: lost %d (%v), want 50", res.Lost, err)
	}
	var b strings.Builder
	if err := WriteCreatesText(&b, []*CreatesResult{res}); err != nil || !strings.Contains(b.String(), "3/2/2") || !strings.Contains(b.String(), "50.0%") {
		t.Fatalf("text: %v\n%s", err, b.String())
	}
	for _, bad := range []CreatesConfig{{Keys: 0, Racers: 2, Concurrency: 1}, {Keys: 1, Racers: 1, Concurrency: 1}, {Keys: 1, Racers: 2, Concurrency: 0}} {
		if _, err := RaceCreates(t.Context(), &createStore{vals: map[string][][]byte{}}, bad, q); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("config %+v: %v", bad, err)
		}
	}
}
