package logtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/ledger"
)

// ErrMemoryDiverged is MemoryBackend's answer to a leaf that differs from
// the one it holds at that index.
var ErrMemoryDiverged = errors.New("logtest: the memory backend holds a different leaf")

// MemoryBackend is a ledger.MerkleBackend kept in memory and computed with
// golang.org/x/mod/sumdb/tlog, a Merkle implementation independent of both
// the ledger's tiles and Trillian. It lets the seam's pending, recovery and
// catch-up paths run in every `go test`, without a Trillian. Safe for
// concurrent use.
type MemoryBackend struct {
	mu     sync.Mutex
	leaves []tlog.Hash // leaf hashes, by index
	stored []tlog.Hash // tlog's stored hashes of the whole tree
}

var _ ledger.MerkleBackend = (*MemoryBackend)(nil)

// NewMemoryBackend returns an empty tree.
func NewMemoryBackend() *MemoryBackend { return &MemoryBackend{} }

// hashReader reads m's stored hashes for tlog; callers hold m.mu.
func (m *MemoryBackend) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(m.stored)) {
				return nil, fmt.Errorf("logtest: stored hash %d of %d", x, len(m.stored))
			}
			out[i] = m.stored[x]
		}
		return out, nil
	})
}

// Integrate implements ledger.MerkleBackend.
func (m *MemoryBackend) Integrate(ctx context.Context, first uint64, leaves [][]byte) ([32]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint64(len(m.leaves))
	if first > n {
		return [32]byte{}, fmt.Errorf("logtest: asked to add from %d but the tree has %d leaves", first, n)
	}
	for i, rec := range leaves {
		idx := first + uint64(i)
		h := tlog.RecordHash(rec)
		if idx < uint64(len(m.leaves)) {
			if m.leaves[idx] != h {
				return [32]byte{}, fmt.Errorf("leaf %d: %w", idx, ErrMemoryDiverged)
			}
			continue
		}
		add, err := tlog.StoredHashes(int64(idx), rec, m.hashReader())
		if err != nil {
			return [32]byte{}, err
		}
		m.stored = append(m.stored, add...)
		m.leaves = append(m.leaves, h)
	}
	return m.root(first + uint64(len(leaves)))
}

func (m *MemoryBackend) root(size uint64) ([32]byte, error) {
	if size > uint64(len(m.leaves)) {
		return [32]byte{}, fmt.Errorf("logtest: tree size %d asked, %d held", size, len(m.leaves))
	}
	h, err := tlog.TreeHash(int64(size), m.hashReader())
	return [32]byte(h), err
}

// Size implements ledger.MerkleBackend.
func (m *MemoryBackend) Size(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.leaves)), nil
}

// InclusionProof implements ledger.MerkleBackend.
func (m *MemoryBackend) InclusionProof(_ context.Context, index, size uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if index >= size || size > uint64(len(m.leaves)) {
		return nil, fmt.Errorf("logtest: no inclusion proof of %d in %d (held %d)", index, size, len(m.leaves))
	}
	p, err := tlog.ProveRecord(int64(size), int64(index), m.hashReader())
	if err != nil {
		return nil, err
	}
	return hashes(p), nil
}

// ConsistencyProof implements ledger.MerkleBackend.
func (m *MemoryBackend) ConsistencyProof(_ context.Context, oldSize, newSize uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if oldSize == 0 || oldSize > newSize || newSize > uint64(len(m.leaves)) {
		return nil, fmt.Errorf("logtest: no consistency proof from %d to %d (held %d)", oldSize, newSize, len(m.leaves))
	}
	p, err := tlog.ProveTree(int64(newSize), int64(oldSize), m.hashReader())
	if err != nil {
		return nil, err
	}
	return hashes(p), nil
}

// Truncate forgets every leaf from size on, as a backend restored from an
// older backup would.
func (m *MemoryBackend) Truncate(size uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size >= uint64(len(m.leaves)) {
		return
	}
	m.leaves = m.leaves[:size]
	m.stored = m.stored[:tlog.StoredHashCount(int64(size))]
}

func hashes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i][:]...)
	}
	return out
}
