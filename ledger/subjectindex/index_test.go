package subjectindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// model is the plain truth an index must match: each key's list.
type model map[vsi.MapKey]*vsi.List

func (m model) leaves(t *testing.T) []vsi.Leaf {
	t.Helper()
	var ls []vsi.Leaf
	for k, l := range m {
		c, err := l.Commitment(k)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, vsi.Leaf{Key: k, Value: c})
	}
	return ls
}

// countNodes is the number of stored nodes of the canonical tree holding
// the sorted leaves at depth d: every non-empty subtree that is a leaf or
// is split.
func countNodes(ls []vsi.Leaf, d int) int {
	if len(ls) <= 1 {
		return len(ls)
	}
	i := 0
	for i < len(ls) && vsi.Bit(&ls[i].Key, d) == 0 {
		i++
	}
	return 1 + countNodes(ls[:i], d+1) + countNodes(ls[i:], d+1)
}

func mapKey(i uint64) vsi.MapKey {
	return vsi.MapKey(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("ledger test key"), i)))
}

// seededRand is a fixed nonce stream.
type seededRand struct{ r *rand.ChaCha8 }

func (s seededRand) Read(p []byte) (int, error) { return s.r.Read(p) }

func newSeeded(seed byte) seededRand {
	var s [32]byte
	s[0] = seed
	return seededRand{rand.NewChaCha8(s)}
}

// TestApplyMatchesRecomputation drives an index through random batches of
// appends, erasures and removals (lists made, grown, emptied, made again)
// and after each commit checks the root against the verifier's
// recomputation from scratch, that the store holds exactly the canonical
// tree's nodes and one list per key (nothing stale after leaves move up or
// down), and that proofs of present and absent keys verify.
func TestApplyMatchesRecomputation(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	x := New(Config{Rand: newSeeded(1)})
	st := NewMemStore()
	m := model{}
	nonces := map[vsi.MapKey][vsi.NonceSize]byte{}
	next := uint64(0) // the next leaf index
	const keySpace = 300
	for round := range 120 {
		var b Batch
		touched := map[vsi.MapKey]bool{}
		for range 1 + rng.IntN(40) {
			k := mapKey(uint64(rng.IntN(keySpace)))
			if touched[k] {
				continue // one kind of change per key and batch keeps the model simple
			}
			touched[k] = true
			l := m[k]
			switch {
			case l == nil || rng.IntN(3) == 0:
				n := 1 + rng.IntN(3)
				for range n {
					b.Append(k, next)
					if l == nil {
						l = &vsi.List{}
						m[k] = l
					}
					l.Items = append(l.Items, vsi.Item{Leaf: next})
					next++
				}
			default:
				var live, erased []int
				for i, it := range l.Items {
					if it.Erased {
						erased = append(erased, i)
					} else {
						live = append(live, i)
					}
				}
				if len(erased) > 0 && rng.IntN(2) == 0 {
					i := erased[rng.IntN(len(erased))]
					b.Drop(k, l.Items[i].Leaf)
					l.Items = slices.Delete(l.Items, i, i+1)
					if len(l.Items) == 0 {
						delete(m, k)
						delete(nonces, k)
					}
				} else if len(live) > 0 {
					i := live[rng.IntN(len(live))]
					b.Erase(k, l.Items[i].Leaf, next)
					l.Items[i] = vsi.Item{Leaf: l.Items[i].Leaf, Erased: true, Tombstone: next}
					next++
				}
			}
		}
		u, err := x.Apply(ctx, st, &b)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		st.Commit(u.Writes)
		if got, err := x.Check(ctx, st); err != nil || got != u.Root {
			t.Fatalf("round %d: Check gives %x, %v; the update said %x", round, got[:8], err, u.Root[:8])
		}
		// The nonces are the store's: copy each new one into the model,
		// and check an old one never changes.
		for k, l := range m {
			raw, found, _ := st.Lookup(ctx, x.ListKey(k))
			if !found {
				t.Fatalf("round %d: key %x has no stored list", round, k[:4])
			}
			sl, err := vsi.ParseList(raw)
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := nonces[k]; ok && old != sl.Nonce {
				t.Fatalf("round %d: the nonce of key %x changed", round, k[:4])
			}
			nonces[k] = sl.Nonce
			l.Nonce = sl.Nonce
			if !slices.Equal(sl.Items, l.Items) {
				t.Fatalf("round %d: key %x: stored items %v, want %v", round, k[:4], sl.Items, l.Items)
			}
		}
		ls := m.leaves(t)
		want, err := vsi.RootOf(ls)
		if err != nil {
			t.Fatal(err)
		}
		if u.Root != want {
			t.Fatalf("round %d: root %x, recomputed %x", round, u.Root[:8], want[:8])
		}
		if got, _ := x.Root(ctx, st); got != want {
			t.Fatalf("round %d: stored root %x, recomputed %x", round, got[:8], want[:8])
		}
		slices.SortFunc(ls, func(a, b vsi.Leaf) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		records, _ := st.Size()
		if wantRecords := countNodes(ls, 0) + len(ls); records != wantRecords {
			t.Fatalf("round %d: %d records stored, want %d nodes and lists", round, records, wantRecords)
		}
		for i := range 20 {
			k := mapKey(uint64(rng.IntN(keySpace + 50)))
			p, l, err := x.Prove(ctx, st, k)
			if err != nil {
				t.Fatalf("round %d proof %d: %v", round, i, err)
			}
			if (l == nil) != (m[k] == nil) {
				t.Fatalf("round %d: key %x present=%v in the proof, %v in the model", round, k[:4], l != nil, m[k] != nil)
			}
			if err := vsi.VerifyList(want, k, l, p); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if len(m) < 50 {
		t.Errorf("only %d keys at the end: the test exercised too little", len(m))
	}
}

// TestRefusedUpdatesWriteNothing: a batch that does not fit the lists is
// refused whole.
func TestRefusedUpdatesWriteNothing(t *testing.T) {
	ctx := context.Background()
	x := New(Config{Rand: newSeeded(2)})
	st := NewMemStore()
	var b Batch
	b.Append(mapKey(1), 10)
	b.Append(mapKey(2), 11)
	u, err := x.Apply(ctx, st, &b)
	if err != nil {
		t.Fatal(err)
	}
	st.Commit(u.Writes)
	bad := map[string]func(*Batch){
		"append not after the last": func(b *Batch) { b.Append(mapKey(1), 10) },
		"erase an unknown leaf":     func(b *Batch) { b.Erase(mapKey(1), 9, 20) },
		"erase with an old tomb":    func(b *Batch) { b.Erase(mapKey(1), 10, 10) },
		"drop a live leaf":          func(b *Batch) { b.Drop(mapKey(2), 11) },
		"drop from a missing list":  func(b *Batch) { b.Drop(mapKey(3), 11) },
		"erase twice":               func(b *Batch) { b.Erase(mapKey(1), 10, 12); b.Erase(mapKey(1), 10, 13) },
	}
	before, _ := x.Root(ctx, st)
	for name, f := range bad {
		var b Batch
		b.Append(mapKey(4), 30) // a good change beside the bad one
		f(&b)
		if u, err := x.Apply(ctx, st, &b); !errors.Is(err, ErrUpdate) || u != nil {
			t.Errorf("%s: %v, want ErrUpdate and no update", name, err)
		}
	}
	if after, _ := x.Root(ctx, st); after != before {
		t.Errorf("a refused batch changed the root")
	}
}

// TestCorruptIndexIsDetected: a damaged node or list in the store makes
// Prove and Apply fail with ErrCorrupt instead of serving a wrong proof
// or building on it.
func TestCorruptIndexIsDetected(t *testing.T) {
	ctx := context.Background()
	x := New(Config{Rand: newSeeded(3)})
	build := func() *MemStore {
		st := NewMemStore()
		var b Batch
		for i := range uint64(40) {
			b.Append(mapKey(i), i)
		}
		u, err := x.Apply(ctx, st, &b)
		if err != nil {
			t.Fatal(err)
		}
		st.Commit(u.Writes)
		return st
	}
	var keys [][]byte
	build().Records(func(k, _ []byte) { keys = append(keys, bytes.Clone(k)) })
	byProofs := 0
	for _, key := range keys {
		st := build()
		v, _, _ := st.Lookup(ctx, key)
		v[len(v)-1] ^= 1
		st.Commit([]Write{{Key: key, Value: v}})
		for i := range uint64(40) {
			if _, _, err := x.Prove(ctx, st, mapKey(i)); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("record %x: %v, want ErrCorrupt", key, err)
				}
				byProofs++
				break
			}
		}
		if _, err := x.Check(ctx, st); !errors.Is(err, ErrCorrupt) {
			t.Errorf("a flipped bit in record %x: Check says %v, want ErrCorrupt", key, err)
		}
	}
	// A flipped inner node on a unary chain changes no proof (its hash
	// is nobody's sibling) but would poison the next update: only Check
	// (and the FG's recomputation) sees it. Everything else a proof sees.
	t.Logf("%d of %d damaged records caught by some proof, all by Check", byProofs, len(keys))
	if byProofs < len(keys)/2 {
		t.Errorf("only %d of %d damaged records caught by proofs", byProofs, len(keys))
	}
	// A list record that does not parse stops an update.
	st := build()
	st.Commit([]Write{{Key: x.ListKey(mapKey(5)), Value: []byte{1, 2, 3}}})
	var b Batch
	b.Append(mapKey(5), 100)
	if _, err := x.Apply(ctx, st, &b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("update over a corrupt list: %v, want ErrCorrupt", err)
	}
}

// TestReaderErrorsAreReturned: a failing store read stops Apply and Prove
// with the store's error wrapped.
func TestReaderErrorsAreReturned(t *testing.T) {
	ctx := context.Background()
	x := New(Config{})
	boom := errors.New("disk on fire")
	r := failingReader{boom}
	var b Batch
	b.Append(mapKey(1), 1)
	if _, err := x.Apply(ctx, r, &b); !errors.Is(err, boom) {
		t.Errorf("Apply: %v", err)
	}
	if _, _, err := x.Prove(ctx, r, mapKey(1)); !errors.Is(err, boom) {
		t.Errorf("Prove: %v", err)
	}
}

type failingReader struct{ err error }

func (f failingReader) Lookup(context.Context, []byte) ([]byte, bool, error) {
	return nil, false, f.err
}
