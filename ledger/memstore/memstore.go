// Package memstore is the reference ledger.Store: every clause of the Store
// contract in the plainest terms, in memory. The conformance suite
// (ledger/storetest) runs on it beside Pebble, which shows that the suite
// asks for the contract and not for Pebble's behaviour; tests that need a
// Store without files can use it too. Only tests may import it
// (internal/layering).
//
// Data flows through two layers. A Disk holds what is durable: it survives
// a crash (Open on the same Disk is a restart). A Store is one open of a
// Disk; Commit writes a batch's ahead writes (ledger.Batch.SetAhead) to the
// Disk first, as a step of their own, then the rest of the batch in one
// step, under the Disk's lock, so that readers see a batch wholly or not at
// all (its ahead writes apart, which the contract lets show a moment
// early). Disk.Inject makes the Disk fail, before or after the ahead step,
// as a broken disk would; the Store then fails stop: it refuses every later
// Commit, Get and Scan with ledger.ErrStoreFailed until it is reopened.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/spoor-ledger/spoor/ledger"
)

// Fault says which writes of a commit an injected disk failure hits.
type Fault int

const (
	// NoFault: the disk works.
	NoFault Fault = iota
	// FailAll fails every write: a batch's ahead writes do not land either.
	FailAll
	// FailAfterAhead lets a batch's ahead writes land and fails the rest:
	// the crash between the two steps that the contract's ahead clause
	// allows (Pebble's ingested table is durable, its WAL write fails).
	FailAfterAhead
)

// Disk is what survives a crash: the keys and values of every step that
// Commit completed. The zero value is not ready; use NewDisk.
type Disk struct {
	mu    sync.RWMutex
	data  map[string][]byte
	fault Fault
	err   error
}

// NewDisk returns an empty, working disk.
func NewDisk() *Disk { return &Disk{data: map[string][]byte{}} }

// Inject makes every later write that f names fail with err; NoFault
// repairs the disk (a restart on a new disk holding the same data).
func (d *Disk) Inject(f Fault, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault, d.err = f, err
}

// write applies ops to the disk in one step, unless the fault hits it.
// ahead says whether this is the step of a batch's ahead writes.
func (d *Disk) write(ops []ledger.Op, ahead bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fault == FailAll || d.fault == FailAfterAhead && !ahead {
		return fmt.Errorf("memstore: disk write: %w", d.err)
	}
	for _, op := range ops {
		if op.Delete {
			delete(d.data, string(op.Key))
		} else {
			d.data[string(op.Key)] = bytes.Clone(op.Value)
		}
	}
	return nil
}

// Store is a ledger.Store on a Disk.
type Store struct {
	disk   *Disk
	failed atomic.Pointer[error]
}

var _ ledger.Store = (*Store)(nil)

// New returns a store on a new, empty disk.
func New() *Store { return Open(NewDisk()) }

// Open opens a store on d: after a crash, what d holds is what was durable.
func Open(d *Disk) *Store { return &Store{disk: d} }

// Disk returns the store's disk, to inject faults into it or to reopen it.
func (s *Store) Disk() *Disk { return s.disk }

// failedErr is ErrStoreFailed once a Commit has failed, and nil before.
func (s *Store) failedErr() error {
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w (first failure: %w)", ledger.ErrStoreFailed, *p)
	}
	return nil
}

// Get implements ledger.Store.
func (s *Store) Get(_ context.Context, key []byte) ([]byte, error) {
	if err := s.failedErr(); err != nil {
		return nil, err
	}
	s.disk.mu.RLock()
	defer s.disk.mu.RUnlock()
	v, ok := s.disk.data[string(key)]
	if !ok {
		return nil, ledger.ErrNotFound
	}
	return bytes.Clone(v), nil
}

// Scan implements ledger.Store.
func (s *Store) Scan(ctx context.Context, start, end []byte, fn func(k, v []byte) error) error {
	return s.scan(ctx, start, end, false, fn)
}

// ScanReverse implements ledger.Store.
func (s *Store) ScanReverse(ctx context.Context, start, end []byte, fn func(k, v []byte) error) error {
	return s.scan(ctx, start, end, true, fn)
}

// scan copies the range out under the lock, so that it sees one state of
// the disk (never a part of a batch) and fn may take its time.
func (s *Store) scan(ctx context.Context, start, end []byte, reverse bool, fn func(k, v []byte) error) error {
	if err := s.failedErr(); err != nil {
		return err
	}
	type kv struct{ k, v []byte }
	var kvs []kv
	s.disk.mu.RLock()
	for k, v := range s.disk.data {
		if k >= string(start) && (end == nil || k < string(end)) {
			kvs = append(kvs, kv{[]byte(k), v})
		}
	}
	s.disk.mu.RUnlock()
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	if reverse {
		slices.Reverse(kvs)
	}
	for _, e := range kvs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore scan: %w", err)
		}
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// Commit implements ledger.Store: the ahead writes in one step, then the
// rest in another; a failed step fails the store for good.
func (s *Store) Commit(_ context.Context, b *ledger.Batch) error {
	if err := s.failedErr(); err != nil {
		return err
	}
	var ahead, rest []ledger.Op
	for _, op := range b.Ops {
		if op.Ahead && !op.Delete {
			ahead = append(ahead, op)
		} else {
			rest = append(rest, op)
		}
	}
	if len(ahead) > 0 {
		if err := s.disk.write(ahead, true); err != nil {
			return s.fail(err)
		}
	}
	if err := s.disk.write(rest, false); err != nil {
		return s.fail(err)
	}
	return nil
}

// fail marks the store failed with err and returns err.
func (s *Store) fail(err error) error {
	err = fmt.Errorf("memstore commit: %w", err)
	s.failed.CompareAndSwap(nil, &err)
	return err
}

// Close implements ledger.Store; the disk stays, for a later Open.
func (s *Store) Close() error { return nil }
