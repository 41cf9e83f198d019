// Package memtree is a real RFC 6962 Merkle tree in memory for tests, built
// with x/mod's tlog: a second implementation beside the one Spoor verifies
// with, so a test that checks Spoor against it checks two codes against
// each other.
package memtree

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// MemTree is a tree of synthetic leaves ("leaf <n>", Grow) or of the
// leaves a test appends (Append).
type MemTree struct {
	hashes []tlog.Hash
	size   int64
}

// New returns an empty tree.
func New() *MemTree { return &MemTree{} }

func (m *MemTree) reader() tlog.HashReaderFunc {
	return func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = m.hashes[x]
		}
		return out, nil
	}
}

// Grow appends n synthetic leaves.
func (m *MemTree) Grow(t testing.TB, n int) {
	t.Helper()
	for range n {
		m.Append(t, fmt.Appendf(nil, "leaf %d", m.size))
	}
}

// Append appends one leaf with the given data (the leaf hash is RFC 6962's
// of data).
func (m *MemTree) Append(t testing.TB, data []byte) {
	t.Helper()
	hs, err := tlog.StoredHashes(m.size, data, m.reader())
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.size++
}

// Size returns the number of leaves.
func (m *MemTree) Size() int64 { return m.size }

// TileData returns the bytes of a hash tile of the tree, as a tlog-tiles
// server serves them.
func (m *MemTree) TileData(tile tlog.Tile) ([]byte, error) {
	return tlog.ReadTileData(tile, m.reader())
}

// Root returns the root of the tree's first size leaves.
func (m *MemTree) Root(t testing.TB, size int64) [32]byte {
	t.Helper()
	if size == 0 {
		return sha256.Sum256(nil)
	}
	h, err := tlog.TreeHash(size, m.reader())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Proof returns the consistency proof from size from to size to.
func (m *MemTree) Proof(t testing.TB, from, to int64) [][]byte {
	t.Helper()
	if from == 0 || from == to {
		return [][]byte{}
	}
	p, err := tlog.ProveTree(to, from, m.reader())
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// InclusionProof returns the proof that leaf index is in the tree of the
// first size leaves.
func (m *MemTree) InclusionProof(t testing.TB, index, size int64) [][]byte {
	t.Helper()
	p, err := tlog.ProveRecord(size, index, m.reader())
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
