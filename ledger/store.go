package ledger

import (
	"context"
	"errors"
)

// Store is the ledger's durable key-value storage: the seam between the log
// core and Pebble. The ledger is the only writer: the sequencer goroutine
// commits everything of the log; a few records beside the log (access
// requests) are committed from other goroutines. Any goroutine may read.
//
// The contract (checked by the conformance suite in ledger/storetest, whose
// package doc maps each clause, by its tag, to the tests that cover it):
//   - (clause atomic) Commit applies every operation of the batch atomically,
//     a later write of a key in the batch winning over an earlier one, and
//     returns nil only once the batch is durable (fsync'd): after a crash a
//     batch is either wholly present or wholly absent, and every batch whose
//     Commit returned nil is present.
//   - (clause ahead) The one exception is a batch's ahead writes
//     (Batch.SetAhead): a store may write them first, on their own, so that
//     they are visible a moment before the rest of the batch and, after a
//     crash or a failed Commit, perhaps present without it. Each is then
//     present with its value or absent; once Commit returns nil they are
//     all present, durably, like the rest of the batch.
//   - (clause fail-stop) An error from Commit is fatal: the batch may or may
//     not be durable, and the store refuses every later Commit with
//     ErrStoreFailed. Reads after it may be refused with ErrStoreFailed too
//     (the Pebble store refuses them: its memtable may hold the failed
//     batch); a store that still serves them shows the failed batch wholly
//     or not at all, its ahead writes apart. Close still returns. The ledger
//     stops (fail-stop) and recovers through Open on restart; it never
//     retries an fsync.
//   - (clause read-committed) Get and Scan see every batch whose Commit has
//     returned, and never a part of a batch.
//   - (clause not-found) Get returns ErrNotFound (wrapped or not) for a
//     missing key.
//   - (clause concurrent) Reads are safe concurrently with each other and
//     with Commit, and Commit is safe concurrently with itself.
//   - (clause get-copy) Get's value is the caller's: changing it changes
//     nothing stored.
//   - (clause scan) Scan and ScanReverse visit exactly the keys of [start,
//     end) in ascending (descending) byte order, stop at the first error
//     of fn and return it, and stop with the context's error once it is
//     done.
type Store interface {
	// Get returns a copy of the value stored under key.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Scan calls fn for each key in [start, end) in ascending byte order, with
	// slices valid only during the call; a nil end means no upper bound. A
	// non-nil error from fn stops the scan and is returned.
	Scan(ctx context.Context, start, end []byte, fn func(key, value []byte) error) error
	// ScanReverse is Scan in descending order.
	ScanReverse(ctx context.Context, start, end []byte, fn func(key, value []byte) error) error
	// Commit applies b atomically and durably.
	Commit(ctx context.Context, b *Batch) error
	// Close releases the store. Pending reads may fail after it.
	Close() error
}

// Compacter is implemented by stores that can rewrite their files so that
// deleted keys are physically gone (used by retention).
type Compacter interface {
	Compact(ctx context.Context, start, end []byte) error
}

// Sentinel errors of the Store contract.
var (
	ErrNotFound    = errors.New("ledger: not found")
	ErrStoreFailed = errors.New("ledger: store failed earlier; restart to recover")
)

// Batch is a set of writes committed together. The zero value is empty and
// ready to use. Keys and values are retained, not copied: do not modify
// them after adding.
type Batch struct {
	Ops []Op
}

// Op is one write of a Batch: a Set, or a Delete when Delete is true.
type Op struct {
	Key, Value []byte
	Delete     bool
	// Ahead marks a Set that the store may write before the rest of the
	// batch (SetAhead).
	Ahead bool
}

// Set adds a write of value under key.
func (b *Batch) Set(key, value []byte) { b.Ops = append(b.Ops, Op{Key: key, Value: value}) }

// SetAhead adds a write of value under a key that no earlier batch wrote
// and no other write of this batch touches, which the store may make
// durable before, and apart from, the rest of the batch. The Pebble store
// writes a large run of them as a table of its own and ingests it: the
// envelopes of a large batch, most of its bytes, then skip the write-ahead
// log, the memtable and the compactions that would copy them three or four
// times. The caller must cope with ahead writes that a crash left without
// their batch: the ledger writes only envelopes of new leaves this way,
// and deletes those beyond the tree when it opens (dropOrphanEntries).
func (b *Batch) SetAhead(key, value []byte) {
	b.Ops = append(b.Ops, Op{Key: key, Value: value, Ahead: true})
}

// Delete adds a deletion of key.
func (b *Batch) Delete(key []byte) { b.Ops = append(b.Ops, Op{Key: key, Delete: true}) }

// Len is the number of operations.
func (b *Batch) Len() int { return len(b.Ops) }

// Size is the number of key and value bytes in the batch.
func (b *Batch) Size() int {
	n := 0
	for _, op := range b.Ops {
		n += len(op.Key) + len(op.Value)
	}
	return n
}
