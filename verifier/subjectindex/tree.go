package subjectindex

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
)

// Hash is a node hash, a map value (a list commitment) or a root.
type Hash [32]byte

// EmptyHash is the hash of a subtree holding no key, and the root of the
// empty map. No SHA-256 output is known to be all zeros.
var EmptyHash Hash

// KeyBits is the depth of the full trie: the length of a map key in bits.
const KeyBits = 256

// Tags of the two hashed node kinds (doc.go).
const (
	leafTag = "\x00spoor-index-leaf"
	nodeTag = "\x01spoor-index-node"
)

// LeafHash returns the hash of a subtree holding only key k with value v.
func LeafHash(k MapKey, v Hash) Hash {
	var buf [len(leafTag) + 64]byte
	n := copy(buf[:], leafTag)
	n += copy(buf[n:], k[:])
	copy(buf[n:], v[:])
	return sha256.Sum256(buf[:])
}

// NodeHash returns the hash of a subtree holding two or more keys, from
// the hashes of its halves.
func NodeHash(left, right Hash) Hash {
	var buf [len(nodeTag) + 64]byte
	n := copy(buf[:], nodeTag)
	n += copy(buf[n:], left[:])
	copy(buf[n:], right[:])
	return sha256.Sum256(buf[:])
}

// Bit returns bit d of k (0 is the most significant bit of k[0]): 0 goes
// left, 1 right.
func Bit(k *MapKey, d int) byte { return k[d/8] >> (7 - d%8) & 1 }

// Leaf is one key of the map and its value.
type Leaf struct {
	Key   MapKey
	Value Hash
}

// RootOf computes the root of the map holding exactly leaves, from
// scratch: the definition in doc.go, written plainly. It is what an FG
// recomputing an index head from the envelopes it can read runs, and what
// the ledger's incremental update is tested against. It refuses a key
// given twice.
func RootOf(leaves []Leaf) (Hash, error) {
	s := slices.Clone(leaves)
	slices.SortFunc(s, func(a, b Leaf) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	for i := 1; i < len(s); i++ {
		if s[i].Key == s[i-1].Key {
			return Hash{}, fmt.Errorf("%w: key %x given twice", ErrKey, s[i].Key[:8])
		}
	}
	return subtree(s, 0), nil
}

// subtree hashes the subtree at depth d holding the sorted leaves s, all
// of which share their first d bits.
func subtree(s []Leaf, d int) Hash {
	switch len(s) {
	case 0:
		return EmptyHash
	case 1:
		return LeafHash(s[0].Key, s[0].Value)
	}
	// s is sorted, so the keys with bit d = 0 come first.
	split, _ := slices.BinarySearchFunc(s, 1, func(l Leaf, b int) int { return int(Bit(&l.Key, d)) - b })
	return NodeHash(subtree(s[:split], d+1), subtree(s[split:], d+1))
}
