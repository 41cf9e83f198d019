package verifier_test

// Fuzz targets for the proof checks, whose input (the proof hashes, the
// sizes, the index) comes from a log that may be lying. Whatever the input,
// they do not panic, and what they accept is accepted by a second,
// independent implementation (golang.org/x/mod/sumdb/tlog) for the same
// tree: a proof cannot pass here and be false.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/verifier"
)

// fuzzTreeSize is the size of the fixed tree the fuzz targets prove
// against.
const fuzzTreeSize = 13

// fuzzTree is a tlog tree of fuzzTreeSize leaves: its stored hashes, and
// the leaf hashes and roots of every prefix.
type fuzzTree struct {
	stored []tlog.Hash
	leaves [fuzzTreeSize][32]byte
	roots  [fuzzTreeSize + 1][32]byte
}

func (ft *fuzzTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(ft.stored)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = ft.stored[x]
	}
	return out, nil
}

func newFuzzTree(t testing.TB) *fuzzTree {
	t.Helper()
	ft := &fuzzTree{}
	for i := range fuzzTreeSize {
		data := binary.BigEndian.AppendUint64([]byte("fuzz leaf "), uint64(i))
		ft.leaves[i] = verifier.LeafHash(data)
		added, err := tlog.StoredHashes(int64(i), data, ft)
		if err != nil {
			t.Fatal(err)
		}
		ft.stored = append(ft.stored, added...)
	}
	for n := 0; n <= fuzzTreeSize; n++ {
		h, err := tlog.TreeHash(int64(n), ft)
		if err != nil {
			t.Fatal(err)
		}
		ft.roots[n] = h
	}
	return ft
}

// splitProof cuts b into 32-byte hashes; a remainder becomes a short last
// element, which the checks must refuse.
func splitProof(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 32 {
		out = append(out, b[:32])
		b = b[32:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

func joinProof[H ~[32]byte](hs []H) []byte {
	var out []byte
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	return out
}

func toTlog(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		copy(out[i][:], h)
	}
	return out
}

func FuzzVerifyInclusion(f *testing.F) {
	ft := newFuzzTree(f)
	for _, c := range [][2]int64{{0, 1}, {0, 13}, {5, 8}, {12, 13}, {6, 7}} {
		p, err := tlog.ProveRecord(c[1], c[0], ft)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint64(c[0]), uint64(c[1]), joinProof(p), false)
	}
	f.Add(uint64(3), uint64(2), []byte{}, false)
	f.Add(uint64(1<<63), uint64(1<<63+1), make([]byte, 64*32), true)
	f.Fuzz(func(t *testing.T, index, size uint64, proofBytes []byte, otherLeaf bool) {
		if len(proofBytes) > 80*32 {
			return
		}
		proof := splitProof(proofBytes)
		// The leaf and root of the fixed tree where there are any; made-up
		// ones elsewhere.
		var leaf, root [32]byte
		if index < fuzzTreeSize {
			leaf = ft.leaves[index]
		}
		if otherLeaf {
			leaf[0] ^= 1
		}
		if size <= fuzzTreeSize {
			root = ft.roots[size]
		}
		err := verifier.VerifyInclusion(index, size, leaf, proof, root)
		if err != nil {
			if !errors.Is(err, verifier.ErrProof) {
				t.Fatalf("error without ErrProof: %v", err)
			}
			return
		}
		if size > fuzzTreeSize || index >= size || otherLeaf {
			t.Fatalf("accepted a proof of leaf %d (other leaf %v) in a tree of size %d that is not the fixed tree's", index, otherLeaf, size)
		}
		if err := tlog.CheckRecord(toTlog(proof), int64(size), ft.roots[size], int64(index), ft.leaves[index]); err != nil {
			t.Fatalf("accepted an inclusion proof that x/mod/sumdb/tlog refuses: %v", err)
		}
	})
}

func FuzzVerifyConsistency(f *testing.F) {
	ft := newFuzzTree(f)
	for _, c := range [][2]int64{{1, 13}, {7, 8}, {4, 13}, {13, 13}, {3, 5}} {
		p, err := tlog.ProveTree(c[1], c[0], ft)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint64(c[0]), uint64(c[1]), joinProof(p), false)
	}
	f.Add(uint64(0), uint64(5), []byte{}, false)
	f.Add(uint64(9), uint64(4), make([]byte, 96), true)
	f.Fuzz(func(t *testing.T, oldSize, newSize uint64, proofBytes []byte, otherRoot bool) {
		if len(proofBytes) > 80*32 {
			return
		}
		proof := splitProof(proofBytes)
		var oldRoot, newRoot [32]byte
		if oldSize <= fuzzTreeSize {
			oldRoot = ft.roots[oldSize]
		}
		if newSize <= fuzzTreeSize {
			newRoot = ft.roots[newSize]
		}
		if otherRoot {
			oldRoot[0] ^= 1
		}
		err := verifier.VerifyConsistency(oldSize, newSize, oldRoot, newRoot, proof)
		if err != nil {
			if !errors.Is(err, verifier.ErrProof) {
				t.Fatalf("error without ErrProof: %v", err)
			}
			return
		}
		switch {
		case len(proof) == 0 && oldSize == 0 && !otherRoot:
			return // every tree extends the empty one
		case len(proof) == 0 && oldSize == newSize && oldRoot == newRoot:
			return // a tree extends itself
		case newSize > fuzzTreeSize || oldSize > newSize || otherRoot || oldSize == 0:
			t.Fatalf("accepted consistency of %d (other root %v) with %d, not of the fixed tree", oldSize, otherRoot, newSize)
		}
		if err := tlog.CheckTree(toTlog(proof), int64(newSize), ft.roots[newSize], int64(oldSize), ft.roots[oldSize]); err != nil {
			t.Fatalf("accepted a consistency proof that x/mod/sumdb/tlog refuses: %v", err)
		}
	})
}
