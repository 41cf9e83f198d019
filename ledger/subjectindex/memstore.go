package subjectindex

import (
	"context"
	"slices"
	"sync"
)

// MemStore keeps an index's records in memory: the reference Reader for
// tests and benchmarks, and a way to recompute an index apart from the
// ledger's store. Safe for concurrent use.
type MemStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: make(map[string][]byte)} }

// Lookup implements Reader.
func (s *MemStore) Lookup(_ context.Context, key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[string(key)]
	return slices.Clone(v), ok, nil
}

// Commit applies writes, in order.
func (s *MemStore) Commit(writes []Write) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range writes {
		if w.Delete {
			delete(s.m, string(w.Key))
		} else {
			s.m[string(w.Key)] = slices.Clone(w.Value)
		}
	}
}

// Size returns the number of records and their bytes (keys and values).
func (s *MemStore) Size() (records, bytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, v := range s.m {
		bytes += len(k) + len(v)
	}
	return len(s.m), bytes
}

// Records calls fn for every record, in no particular order.
func (s *MemStore) Records(fn func(key, value []byte)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, v := range s.m {
		fn([]byte(k), v)
	}
}
