package subjectindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"

	vrf "filippo.io/mostly-harmless/vrf-r255"
)

// testVRF is a fixed VRF key for the golden vectors: the scalar
// 0x0101...01 (below the group order, so canonical).
func testVRF(t testing.TB) *vrf.PrivateKey {
	t.Helper()
	sk, err := vrf.NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// proveMapKey is the ledger's side of a map key, written here with the
// library directly (the ledger's package imports this one).
func proveMapKey(t testing.TB, sk *vrf.PrivateKey, k IndexKey, party string) (MapKey, []byte) {
	t.Helper()
	alpha, err := MapKeyInput(k, party)
	if err != nil {
		t.Fatal(err)
	}
	pi := sk.Prove(alpha)
	return MapKeyOfHash(pi.Hash()), pi.Bytes()
}

// proveNaive builds the proof of k in the map holding leaves by walking the
// trie's definition: a second prover, apart from the ledger's stored one.
func proveNaive(leaves []Leaf, k MapKey) *Proof {
	s := slices.Clone(leaves)
	slices.SortFunc(s, func(a, b Leaf) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	p := &Proof{}
	for d := 0; ; d++ {
		switch len(s) {
		case 0:
			p.Kind = AbsentEmpty
			return p
		case 1:
			if s[0].Key == k {
				p.Kind = Inclusion
			} else {
				p.Kind, p.OtherKey, p.OtherValue = AbsentOther, s[0].Key, s[0].Value
			}
			return p
		}
		var on, off []Leaf
		for _, l := range s {
			if Bit(&l.Key, d) == Bit(&k, d) {
				on = append(on, l)
			} else {
				off = append(off, l)
			}
		}
		p.Siblings = append(p.Siblings, subtree(off, d+1))
		s = on
	}
}

// testKey is a map key made from a number, for tests.
func testKey(i uint64) MapKey {
	return MapKey(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("test key"), i)))
}

func testValue(i uint64) Hash {
	return Hash(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("test value"), i)))
}

func testLeaves(n int) []Leaf {
	ls := make([]Leaf, n)
	for i := range ls {
		ls[i] = Leaf{Key: testKey(uint64(i)), Value: testValue(uint64(i))}
	}
	return ls
}
