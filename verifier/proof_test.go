package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is an in-memory golang.org/x/mod/sumdb/tlog hash store.
type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(*m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = (*m)[x]
	}
	return out, nil
}

// memLog is a tlog tree in memory, grown one leaf at a time.
type memLog struct {
	hashes memHashes
	n      int64
}

func (l *memLog) append(t testing.TB, data []byte) {
	t.Helper()
	hs, err := tlog.StoredHashes(l.n, data, &l.hashes)
	if err != nil {
		t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.n++
}

func (l *memLog) root(t testing.TB, n int64) [32]byte {
	t.Helper()
	h, err := tlog.TreeHash(n, &l.hashes)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h)
}

func tlogToBytes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func bytesToTlog(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

func leafData(i int) []byte { return binary.BigEndian.AppendUint64([]byte("leaf "), uint64(i)) }

// TestProofsCrossCheck builds the same tree with golang.org/x/mod/sumdb/tlog
// and with github.com/transparency-dev/merkle, checks that their roots agree
// at every size up to 1100 (and at 65536 and 65537), and that proofs made by
// either verify with the other and with VerifyInclusion/VerifyConsistency.
func TestProofsCrossCheck(t *testing.T) {
	const small = 1100
	large := []int{256 * 256, 256*256 + 1}
	if testing.Short() {
		large = nil
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var ml memLog
	mt := testonly.New(rfc6962.DefaultHasher)
	check := func(n int) {
		t.Helper()
		root := ml.root(t, int64(n))
		if got := mt.HashAt(uint64(n)); !bytes.Equal(got, root[:]) {
			t.Fatalf("size %d: tlog root %x, merkle root %x", n, root, got)
		}
		for _, i := range []int{0, n / 2, n - 1, rng.IntN(n)} {
			leaf := LeafHash(leafData(i))
			// tlog proves, VerifyInclusion checks.
			p, err := tlog.ProveRecord(int64(n), int64(i), &ml.hashes)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaf, tlogToBytes(p), root); err != nil {
				t.Fatalf("tlog inclusion proof: %v", err)
			}
			// merkle proves, tlog and VerifyInclusion check.
			mp, err := mt.InclusionProof(uint64(i), uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(bytesToTlog(mp), int64(n), tlog.Hash(root), int64(i), tlog.Hash(leaf)); err != nil {
				t.Fatalf("size %d leaf %d: tlog rejects merkle's inclusion proof: %v", n, i, err)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaf, mp, root); err != nil {
				t.Fatalf("merkle inclusion proof: %v", err)
			}
		}
		for _, m := range []int{1, n / 2, n - 1, rng.IntN(n) + 1, n} {
			if m < 1 {
				continue
			}
			oldRoot := ml.root(t, int64(m))
			p, err := tlog.ProveTree(int64(n), int64(m), &ml.hashes)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(uint64(m), uint64(n), oldRoot, root, tlogToBytes(p)); err != nil {
				t.Fatalf("size %d->%d: tlog consistency proof: %v", m, n, err)
			}
			mp, err := mt.ConsistencyProof(uint64(m), uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(bytesToTlog(mp), int64(n), tlog.Hash(root), int64(m), tlog.Hash(oldRoot)); err != nil {
				t.Fatalf("size %d->%d: tlog rejects merkle's consistency proof: %v", m, n, err)
			}
			if err := VerifyConsistency(uint64(m), uint64(n), oldRoot, root, mp); err != nil {
				t.Fatalf("size %d->%d: merkle consistency proof: %v", m, n, err)
			}
		}
	}
	next := 0
	grow := func(n int) {
		for ; next < n; next++ {
			d := leafData(next)
			ml.append(t, d)
			mt.AppendData(d)
		}
	}
	for n := 1; n <= small; n++ {
		grow(n)
		check(n)
	}
	for _, n := range large {
		grow(n)
		check(n)
	}
}

func TestProofsRefuse(t *testing.T) {
	var ml memLog
	for i := range 300 {
		ml.append(t, leafData(i))
	}
	root, oldRoot := ml.root(t, 300), ml.root(t, 100)
	leaf := LeafHash(leafData(42))
	incl, err := tlog.ProveRecord(300, 42, &ml.hashes)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := tlog.ProveTree(300, 100, &ml.hashes)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(42, 300, leaf, tlogToBytes(incl), root); err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(100, 300, oldRoot, root, tlogToBytes(cons)); err != nil {
		t.Fatal(err)
	}
	tampered := func(p []tlog.Hash, i int) [][]byte {
		b := tlogToBytes(append([]tlog.Hash(nil), p...))
		b[i][0] ^= 1
		return b
	}
	other := sha256.Sum256([]byte("other"))
	for name, err := range map[string]error{
		"inclusion: tampered element": VerifyInclusion(42, 300, leaf, tampered(incl, 3), root),
		"inclusion: wrong index":      VerifyInclusion(43, 300, leaf, tlogToBytes(incl), root),
		"inclusion: wrong size":       VerifyInclusion(42, 64, leaf, tlogToBytes(incl), root),
		"inclusion: wrong leaf":       VerifyInclusion(42, 300, other, tlogToBytes(incl), root),
		"inclusion: wrong root":       VerifyInclusion(42, 300, leaf, tlogToBytes(incl), other),
		"inclusion: short proof":      VerifyInclusion(42, 300, leaf, tlogToBytes(incl[1:]), root),
		"inclusion: index >= size":    VerifyInclusion(300, 300, leaf, tlogToBytes(incl), root),
		"inclusion: 31-byte element":  VerifyInclusion(42, 300, leaf, append(tlogToBytes(incl[1:]), make([]byte, 31)), root),
		"consistency: tampered":       VerifyConsistency(100, 300, oldRoot, root, tampered(cons, 0)),
		"consistency: wrong old root": VerifyConsistency(100, 300, other, root, tlogToBytes(cons)),
		"consistency: wrong new root": VerifyConsistency(100, 300, oldRoot, other, tlogToBytes(cons)),
		"consistency: sizes swapped":  VerifyConsistency(300, 100, root, oldRoot, tlogToBytes(cons)),
		"consistency: empty proof":    VerifyConsistency(100, 300, oldRoot, root, nil),
		"consistency: same size":      VerifyConsistency(300, 300, oldRoot, root, nil),
		"consistency: empty tree":     VerifyConsistency(0, 300, other, root, nil),
		"consistency: 0 with proof":   VerifyConsistency(0, 300, sha256.Sum256(nil), root, tlogToBytes(cons)),
	} {
		if !errors.Is(err, ErrProof) {
			t.Errorf("%s: err = %v, want ErrProof", name, err)
		}
	}
	if err := VerifyConsistency(0, 300, sha256.Sum256(nil), root, nil); err != nil {
		t.Errorf("empty tree is consistent with any: %v", err)
	}
	if err := VerifyConsistency(300, 300, root, root, nil); err != nil {
		t.Errorf("a tree is consistent with itself: %v", err)
	}
}

// TestHashChildren holds HashChildren to rfc6962's, on node hashes and on
// inputs of other lengths.
func TestHashChildren(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, n := range [][2]int{{32, 32}, {32, 32}, {0, 0}, {31, 33}, {64, 1}} {
		l, r := make([]byte, n[0]), make([]byte, n[1])
		for i := range l {
			l[i] = byte(rnd.Uint32())
		}
		for i := range r {
			r[i] = byte(rnd.Uint32())
		}
		if got, want := HashChildren(l, r), rfc6962.DefaultHasher.HashChildren(l, r); !slices.Equal(got, want) {
			t.Errorf("lengths %v: %x, want %x", n, got, want)
		}
	}
}
