package subjectindex

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// TestHashesFollowTheDefinition recomputes the two node hashes with
// nothing but SHA-256 over the tagged concatenation of doc.go.
func TestHashesFollowTheDefinition(t *testing.T) {
	k, v := testKey(1), testValue(2)
	want := sha256.Sum256(append(append([]byte("\x00spoor-index-leaf"), k[:]...), v[:]...))
	if got := LeafHash(k, v); got != Hash(want) {
		t.Errorf("LeafHash = %x, want %x", got, want)
	}
	l, r := testValue(3), testValue(4)
	want = sha256.Sum256(append(append([]byte("\x01spoor-index-node"), l[:]...), r[:]...))
	if got := NodeHash(l, r); got != Hash(want) {
		t.Errorf("NodeHash = %x, want %x", got, want)
	}
}

func TestRootOfSmallMaps(t *testing.T) {
	if r, _ := RootOf(nil); r != EmptyHash {
		t.Errorf("empty map: root %x, want the empty hash", r)
	}
	ls := testLeaves(1)
	if r, _ := RootOf(ls); r != LeafHash(ls[0].Key, ls[0].Value) {
		t.Errorf("one key: root is not its leaf hash")
	}
	// Two keys that differ first in bit 0: the root joins their leaves.
	a, b := Leaf{Value: testValue(1)}, Leaf{Value: testValue(2)}
	b.Key[0] = 0x80
	if r, _ := RootOf([]Leaf{b, a}); r != NodeHash(LeafHash(a.Key, a.Value), LeafHash(b.Key, b.Value)) {
		t.Errorf("two keys parting at bit 0: wrong root")
	}
	// Two keys that share bits 0 and 1 and part at bit 2: two unary
	// levels above their parting node.
	a.Key[0], b.Key[0] = 0x40, 0x60
	want := NodeHash(NodeHash(EmptyHash, NodeHash(LeafHash(a.Key, a.Value), LeafHash(b.Key, b.Value))), EmptyHash)
	if r, _ := RootOf([]Leaf{a, b}); r != want {
		t.Errorf("two keys parting at bit 2: wrong root")
	}
	// Two keys that part only at the last bit: leaves at depth 256.
	a.Key, b.Key = MapKey{}, MapKey{}
	b.Key[31] = 1
	h := NodeHash(LeafHash(a.Key, a.Value), LeafHash(b.Key, b.Value))
	for d := 254; d >= 0; d-- {
		h = NodeHash(h, EmptyHash)
	}
	if r, _ := RootOf([]Leaf{a, b}); r != h {
		t.Errorf("two keys parting at bit 255: wrong root")
	}
	p := proveNaive([]Leaf{a, b}, b.Key)
	if len(p.Siblings) != 256 {
		t.Fatalf("proof of a depth-256 leaf has %d siblings", len(p.Siblings))
	}
	if err := VerifyInclusion(h, b.Key, b.Value, p); err != nil {
		t.Errorf("depth-256 leaf: %v", err)
	}
	raw, err := p.MarshalBinary()
	if err != nil || len(raw) != MaxProofSize-32*255 {
		t.Errorf("depth-256 proof: %d bytes, %v", len(raw), err)
	}
	if _, err := RootOf([]Leaf{a, a}); !errors.Is(err, ErrKey) {
		t.Errorf("a key given twice: %v, want ErrKey", err)
	}
}

// TestProofsOfEveryKey proves every key present and many absent in maps
// of several sizes, through the byte form, and checks that the proofs fail
// for any other value, key or root.
func TestProofsOfEveryKey(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5, 17, 100, 1000} {
		ls := testLeaves(n)
		root, err := RootOf(ls)
		if err != nil {
			t.Fatal(err)
		}
		step := 1 + n/100 // keeps the naive prover's quadratic cost small
		for i := 0; i < n; i += step {
			l := ls[i]
			p := roundTrip(t, proveNaive(ls, l.Key))
			if err := VerifyInclusion(root, l.Key, l.Value, p); err != nil {
				t.Fatalf("n=%d key %d: %v", n, i, err)
			}
			if err := VerifyInclusion(root, l.Key, testValue(uint64(i+1)), p); !errors.Is(err, ErrProof) {
				t.Fatalf("n=%d key %d with another value: %v", n, i, err)
			}
			if err := VerifyAbsence(root, l.Key, p); !errors.Is(err, ErrProof) {
				t.Fatalf("n=%d key %d: an inclusion proof shows absence: %v", n, i, err)
			}
			// The inclusion siblings with an empty end or the
			// neighbour's leaf must not prove the key absent.
			fake := *p
			fake.Kind = AbsentEmpty
			if err := VerifyAbsence(root, l.Key, &fake); err == nil {
				t.Fatalf("n=%d key %d: absence forged from an inclusion proof", n, i)
			}
			if n > 1 {
				if err := VerifyInclusion(root, ls[(i+1)%n].Key, ls[(i+1)%n].Value, p); err == nil {
					t.Fatalf("n=%d: the proof of key %d proves key %d", n, i, (i+1)%n)
				}
			}
		}
		kinds := map[ProofKind]int{}
		for j := range 200 {
			k := testKey(uint64(1_000_000 + j))
			p := roundTrip(t, proveNaive(ls, k))
			kinds[p.Kind]++
			if err := VerifyAbsence(root, k, p); err != nil {
				t.Fatalf("n=%d absent key %d: %v", n, j, err)
			}
			if err := VerifyInclusion(root, k, testValue(0), p); !errors.Is(err, ErrProof) {
				t.Fatalf("n=%d absent key %d shown present: %v", n, j, err)
			}
			if n > 0 {
				if err := VerifyAbsence(root, ls[0].Key, p); err == nil && p.Kind == AbsentEmpty {
					// An empty end may lie on another key's path only if
					// that key is absent too, which ls[0] is not.
					t.Fatalf("n=%d: the absence proof of a new key proves key 0 absent", n)
				}
			}
		}
		if n >= 17 && (kinds[AbsentEmpty] == 0 || kinds[AbsentOther] == 0) {
			t.Errorf("n=%d: absence proofs of kinds %v: want both kinds exercised", n, kinds)
		}
	}
}

func roundTrip(t *testing.T, p *Proof) *Proof {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	q, err := ParseProof(b)
	if err != nil {
		t.Fatalf("ParseProof of a proof just made: %v", err)
	}
	again, _ := q.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Fatalf("proof bytes changed in a round trip")
	}
	return q
}

// TestEveryProofByteMatters flips each bit of a proof of each kind: the
// result either does not parse or does not verify.
func TestEveryProofByteMatters(t *testing.T) {
	ls := testLeaves(64)
	root, _ := RootOf(ls)
	check := func(name string, k MapKey, v *Hash, p *Proof) {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			for bit := range 8 {
				c := bytes.Clone(b)
				c[i] ^= 1 << bit
				q, err := ParseProof(c)
				if err != nil {
					continue
				}
				if v != nil {
					err = VerifyInclusion(root, k, *v, q)
				} else {
					err = VerifyAbsence(root, k, q)
				}
				if err == nil {
					t.Errorf("%s: byte %d bit %d flipped still verifies", name, i, bit)
				}
			}
		}
	}
	check("inclusion", ls[7].Key, &ls[7].Value, proveNaive(ls, ls[7].Key))
	var sawEmpty, sawOther bool
	for j := uint64(0); !sawEmpty || !sawOther; j++ {
		k := testKey(5000 + j)
		p := proveNaive(ls, k)
		if p.Kind == AbsentEmpty && !sawEmpty {
			sawEmpty = true
			check("absent, empty", k, nil, p)
		}
		if p.Kind == AbsentOther && !sawOther {
			sawOther = true
			check("absent, other leaf", k, nil, p)
		}
	}
}

func TestParseProofRefusesNonCanonical(t *testing.T) {
	ls := testLeaves(10)
	good, _ := proveNaive(ls, ls[3].Key).MarshalBinary()
	cases := map[string][]byte{
		"empty":            nil,
		"version 2":        append([]byte{2}, good[1:]...),
		"kind 0":           append([]byte{1, 0}, good[2:]...),
		"kind 4":           append([]byte{1, 4}, good[2:]...),
		"trailing byte":    append(bytes.Clone(good), 0),
		"cut off":          good[:len(good)-1],
		"depth 257":        {1, 1, 1, 1},
		"unused bitmap":    {1, 2, 0, 1, 0x01, 'x'},
		"empty present":    append([]byte{1, 2, 0, 1, 0x80}, make([]byte, 32)...),
		"deepest is empty": {1, 2, 0, 1, 0x00},
		"other at 256": append(append([]byte{1, 3, 1, 0}, bytes.Repeat([]byte{0xff}, 32)...),
			append(bytes.Repeat([]byte{1}, 256*32), make([]byte, 64)...)...),
	}
	for name, b := range cases {
		if _, err := ParseProof(b); !errors.Is(err, ErrMalformedProof) {
			t.Errorf("%s: %v, want ErrMalformedProof", name, err)
		}
	}
	// A proof of kind 1 or 2 names no other leaf.
	p := proveNaive(ls, ls[3].Key)
	p.OtherKey[0] = 1
	if _, err := p.MarshalBinary(); !errors.Is(err, ErrMalformedProof) {
		t.Errorf("inclusion with another leaf: %v", err)
	}
	if err := VerifyInclusion(EmptyHash, ls[3].Key, ls[3].Value, p); !errors.Is(err, ErrMalformedProof) {
		t.Errorf("verifying a malformed proof: %v", err)
	}
}
