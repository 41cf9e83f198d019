package subjectindex

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// A list is what the map commits to under one map key: the entries about
// one child by one discloser, in log order, each live or erased, with a
// random nonce. Byte layout (version 1), integers big-endian:
//
//	offset size  field
//	0      1     version, = 1
//	1      32    nonce: 32 random bytes, drawn when the list is made
//	33     4     item count n, 1..MaxListItems
//	37           n items, in strictly increasing leaf index order:
//	       8       leaf index of the entry
//	       1       state: 0 live, 1 erased
//	       8       (erased only) leaf index of the tombstone that erased it,
//	               greater than the entry's own
//
// There is one byte form per list: no trailing bytes, no unknown state, no
// empty list (a key whose list would be empty leaves the map).
//
// The nonce is kept in the ledger's store and revealed only in that child's
// bundle: whoever holds a leaked proof, or the map's leaves, and guesses a
// child's list cannot confirm the guess without it.

// ListVersion is the only list version this package reads and writes.
const ListVersion = 1

// MaxListItems bounds a list: as many entries as one bundle may carry.
const MaxListItems = 20000

// NonceSize is the size of a list's nonce.
const NonceSize = 32

// ErrList is wrapped by every error about a list's byte form or contents.
var ErrList = errors.New("subjectindex: malformed list")

// listLabel separates list commitments from every other hash of the index.
const listLabel = "spoor/subject-index/v1 list\x00"

// Item is one entry of a list.
type Item struct {
	// Leaf is the entry's leaf index in the log.
	Leaf uint64
	// Erased says retention or a request erased the entry; it stays in the
	// list, marked, until the covenant's notice period has passed.
	Erased bool
	// Tombstone is the leaf index of the tombstone that erased the entry
	// (zero when live): a verifier checks its leaf record names Leaf.
	Tombstone uint64
}

// List is the decoded form of a list.
type List struct {
	Nonce [NonceSize]byte
	Items []Item
}

// Check reports why l has no byte form.
func (l *List) Check() error {
	switch {
	case len(l.Items) == 0:
		return fmt.Errorf("%w: no items (an empty list leaves the map)", ErrList)
	case len(l.Items) > MaxListItems:
		return fmt.Errorf("%w: %d items, at most %d", ErrList, len(l.Items), MaxListItems)
	}
	for i, it := range l.Items {
		if i > 0 && it.Leaf <= l.Items[i-1].Leaf {
			return fmt.Errorf("%w: item %d: leaf %d is not after leaf %d", ErrList, i, it.Leaf, l.Items[i-1].Leaf)
		}
		if it.Erased && it.Tombstone <= it.Leaf {
			return fmt.Errorf("%w: item %d: tombstone %d does not come after leaf %d", ErrList, i, it.Tombstone, it.Leaf)
		}
		if !it.Erased && it.Tombstone != 0 {
			return fmt.Errorf("%w: item %d: a live entry has no tombstone", ErrList, i)
		}
	}
	return nil
}

// AppendBinary appends l's byte form to dst, leaving dst unchanged on error.
func (l *List) AppendBinary(dst []byte) ([]byte, error) {
	if err := l.Check(); err != nil {
		return dst, err
	}
	dst = append(dst, ListVersion)
	dst = append(dst, l.Nonce[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l.Items)))
	for _, it := range l.Items {
		dst = binary.BigEndian.AppendUint64(dst, it.Leaf)
		if it.Erased {
			dst = append(dst, 1)
			dst = binary.BigEndian.AppendUint64(dst, it.Tombstone)
		} else {
			dst = append(dst, 0)
		}
	}
	return dst, nil
}

// MarshalBinary returns l's byte form.
func (l *List) MarshalBinary() ([]byte, error) {
	return l.AppendBinary(make([]byte, 0, 37+9*len(l.Items)))
}

// ParseList decodes a list, refusing every byte string that is not the one
// valid form of some list. Errors wrap ErrList.
func ParseList(b []byte) (*List, error) {
	if len(b) < 37 {
		return nil, fmt.Errorf("%w: %d bytes, at least 37", ErrList, len(b))
	}
	if b[0] != ListVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrList, b[0], ListVersion)
	}
	l := new(List)
	copy(l.Nonce[:], b[1:33])
	n := binary.BigEndian.Uint32(b[33:37])
	if n == 0 || n > MaxListItems {
		return nil, fmt.Errorf("%w: %d items, want 1..%d", ErrList, n, MaxListItems)
	}
	// Each item is at least 9 bytes: refuse a count the bytes cannot hold
	// before allocating for it.
	rest := b[37:]
	if uint64(len(rest)) < 9*uint64(n) {
		return nil, fmt.Errorf("%w: %d items do not fit in %d bytes", ErrList, n, len(rest))
	}
	l.Items = make([]Item, n)
	for i := range l.Items {
		if len(rest) < 9 {
			return nil, fmt.Errorf("%w: item %d is cut off", ErrList, i)
		}
		it := Item{Leaf: binary.BigEndian.Uint64(rest)}
		switch rest[8] {
		case 0:
			rest = rest[9:]
		case 1:
			if len(rest) < 17 {
				return nil, fmt.Errorf("%w: item %d is cut off", ErrList, i)
			}
			it.Erased, it.Tombstone = true, binary.BigEndian.Uint64(rest[9:])
			rest = rest[17:]
		default:
			return nil, fmt.Errorf("%w: item %d: unknown state %d", ErrList, i, rest[8])
		}
		l.Items[i] = it
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrList, len(rest))
	}
	if err := l.Check(); err != nil {
		return nil, err
	}
	return l, nil
}

// Commitment returns the value the map holds for l under key k:
// SHA-256("spoor/subject-index/v1 list\x00" || k || l's byte form). The
// key is bound in so that a list cannot be shown under another child's or
// another party's key.
func (l *List) Commitment(k MapKey) (Hash, error) {
	b, err := l.MarshalBinary()
	if err != nil {
		return Hash{}, err
	}
	return commitBytes(k, b), nil
}

// CommitmentOf is Commitment for a list already in its byte form (checked
// by ParseList or made by MarshalBinary), as the ledger keeps it.
func CommitmentOf(k MapKey, list []byte) Hash { return commitBytes(k, list) }

func commitBytes(k MapKey, b []byte) Hash {
	h := sha256.New()
	h.Write([]byte(listLabel))
	h.Write(k[:])
	h.Write(b)
	var out Hash
	h.Sum(out[:0])
	return out
}
