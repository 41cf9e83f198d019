package subjectindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// A proof shows what the map holds at one key: the key's value (an
// inclusion proof), or that the key is absent (a non-inclusion proof: the
// key's path ends in an empty subtree, or in the leaf of another key that
// shares the path so far). It carries the hashes beside the path from the
// root down to where the path ends. Byte layout (version 1):
//
//	offset size  field
//	0      1     version, = 1
//	1      1     kind: 1 inclusion, 2 absent (empty), 3 absent (another leaf)
//	2      2     depth n: where the path ends, 0..256, big-endian
//	4      m     bitmap, m = ceil(n/8): bit d (most significant first) is
//	             set when the sibling at depth d is not empty; unused bits 0
//	4+m    32*s  the s siblings set in the bitmap, from the root down
//	             (kind 3 only:)
//	       32    the other leaf's key
//	       32    the other leaf's value
//
// "The sibling at depth d" is the hash of the subtree beside the path's
// node at depth d+1. One byte form per proof: a sibling marked present is
// never EmptyHash, and where the path ends at a leaf (kinds 1 and 3), or
// at an empty subtree (kind 2), below the root, the deepest sibling is
// present, since a subtree of one key or none is never split further.

// ProofVersion is the only proof version this package reads and writes.
const ProofVersion = 1

// MaxProofSize is the size of the largest proof: 256 siblings of kind 1
// or 2 (kind 3 ends above depth 256 and carries 64 bytes more).
const MaxProofSize = 4 + 32 + 32*KeyBits

// ProofKind says what a proof shows.
type ProofKind uint8

// The proof kinds; their values are part of the byte form.
const (
	// Inclusion: the key is in the map, with the value the verifier
	// brings (a list's commitment).
	Inclusion ProofKind = 1
	// AbsentEmpty: the key's path ends in an empty subtree.
	AbsentEmpty ProofKind = 2
	// AbsentOther: the key's path ends in the leaf of another key.
	AbsentOther ProofKind = 3
)

// ErrMalformedProof is wrapped by every error about a proof's byte form.
var ErrMalformedProof = errors.New("subjectindex: malformed proof")

// ErrProof is wrapped by every error of a well-formed proof that does not
// prove the claim against the root.
var ErrProof = errors.New("subjectindex: proof does not verify")

// Proof is the decoded form of a proof.
type Proof struct {
	Kind ProofKind
	// Siblings[d] is the sibling at depth d; len(Siblings) is the depth at
	// which the key's path ends. EmptyHash stands for an empty sibling.
	Siblings []Hash
	// OtherKey and OtherValue are the leaf the path ends in (AbsentOther).
	OtherKey   MapKey
	OtherValue Hash
}

// check reports why p has no byte form.
func (p *Proof) check() error {
	n := len(p.Siblings)
	switch p.Kind {
	case Inclusion, AbsentEmpty:
		if n > KeyBits {
			return fmt.Errorf("%w: depth %d, at most %d", ErrMalformedProof, n, KeyBits)
		}
	case AbsentOther:
		// Two different keys part at depth 255 at the latest.
		if n > KeyBits-1 {
			return fmt.Errorf("%w: depth %d, at most %d for another leaf", ErrMalformedProof, n, KeyBits-1)
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrMalformedProof, p.Kind)
	}
	if p.Kind != AbsentOther && (p.OtherKey != MapKey{} || p.OtherValue != Hash{}) {
		return fmt.Errorf("%w: only a proof of kind %d names another leaf", ErrMalformedProof, AbsentOther)
	}
	if n > 0 && p.Siblings[n-1] == EmptyHash {
		return fmt.Errorf("%w: the deepest sibling is empty, so the path ends higher", ErrMalformedProof)
	}
	return nil
}

// AppendBinary appends p's byte form to dst, leaving dst unchanged on error.
func (p *Proof) AppendBinary(dst []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return dst, err
	}
	n := len(p.Siblings)
	dst = append(dst, ProofVersion, byte(p.Kind))
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	start := len(dst)
	dst = append(dst, make([]byte, (n+7)/8)...)
	for d, s := range p.Siblings {
		if s != EmptyHash {
			dst[start+d/8] |= 0x80 >> (d % 8)
		}
	}
	for _, s := range p.Siblings {
		if s != EmptyHash {
			dst = append(dst, s[:]...)
		}
	}
	if p.Kind == AbsentOther {
		dst = append(dst, p.OtherKey[:]...)
		dst = append(dst, p.OtherValue[:]...)
	}
	return dst, nil
}

// MarshalBinary returns p's byte form.
func (p *Proof) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// ParseProof decodes a proof, refusing every byte string that is not the
// one valid form of some proof. It allocates at most 32 bytes per byte of
// input. Errors wrap ErrMalformedProof.
func ParseProof(b []byte) (*Proof, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, at least 4", ErrMalformedProof, len(b))
	}
	if len(b) > MaxProofSize+64 {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedProof, len(b), MaxProofSize+64)
	}
	if b[0] != ProofVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedProof, b[0], ProofVersion)
	}
	p := &Proof{Kind: ProofKind(b[1])}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > KeyBits {
		return nil, fmt.Errorf("%w: depth %d, at most %d", ErrMalformedProof, n, KeyBits)
	}
	m := (n + 7) / 8
	if len(b) < 4+m {
		return nil, fmt.Errorf("%w: bitmap cut off", ErrMalformedProof)
	}
	bitmap, rest := b[4:4+m], b[4+m:]
	present := 0
	for i, c := range bitmap {
		if i == m-1 && n%8 != 0 && c&(0xff>>(n%8)) != 0 {
			return nil, fmt.Errorf("%w: bitmap bits beyond depth %d are set", ErrMalformedProof, n)
		}
		present += bits.OnesCount8(c)
	}
	want := 32 * present
	if p.Kind == AbsentOther {
		want += 64
	}
	if len(rest) != want {
		return nil, fmt.Errorf("%w: %d bytes after the bitmap, want %d", ErrMalformedProof, len(rest), want)
	}
	p.Siblings = make([]Hash, n)
	for d := range p.Siblings {
		if bitmap[d/8]&(0x80>>(d%8)) == 0 {
			continue
		}
		copy(p.Siblings[d][:], rest)
		rest = rest[32:]
		if p.Siblings[d] == EmptyHash {
			return nil, fmt.Errorf("%w: sibling at depth %d is marked present but empty", ErrMalformedProof, d)
		}
	}
	if p.Kind == AbsentOther {
		copy(p.OtherKey[:], rest[:32])
		copy(p.OtherValue[:], rest[32:])
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// rootFrom folds the siblings onto h, the hash where k's path ends.
func (p *Proof) rootFrom(k *MapKey, h Hash) Hash {
	for d := len(p.Siblings) - 1; d >= 0; d-- {
		if Bit(k, d) == 0 {
			h = NodeHash(h, p.Siblings[d])
		} else {
			h = NodeHash(p.Siblings[d], h)
		}
	}
	return h
}

// VerifyInclusion checks that p proves the map with root holds value v at
// key k.
func VerifyInclusion(root Hash, k MapKey, v Hash, p *Proof) error {
	if err := p.check(); err != nil {
		return err
	}
	if p.Kind != Inclusion {
		return fmt.Errorf("%w: a proof of kind %d does not show a key present", ErrProof, p.Kind)
	}
	if got := p.rootFrom(&k, LeafHash(k, v)); got != root {
		return fmt.Errorf("%w: inclusion at depth %d gives root %x, want %x", ErrProof, len(p.Siblings), got[:8], root[:8])
	}
	return nil
}

// VerifyAbsence checks that p proves the map with root holds no value at
// key k.
func VerifyAbsence(root Hash, k MapKey, p *Proof) error {
	if err := p.check(); err != nil {
		return err
	}
	n := len(p.Siblings)
	var end Hash
	switch p.Kind {
	case AbsentEmpty:
		end = EmptyHash
	case AbsentOther:
		if p.OtherKey == k {
			return fmt.Errorf("%w: the other leaf is the key itself", ErrProof)
		}
		// The other leaf must lie on k's path: it shares its first n bits.
		for d := 0; d < n; d++ {
			if Bit(&p.OtherKey, d) != Bit(&k, d) {
				return fmt.Errorf("%w: the other leaf leaves the key's path at depth %d", ErrProof, d)
			}
		}
		end = LeafHash(p.OtherKey, p.OtherValue)
	default:
		return fmt.Errorf("%w: a proof of kind %d does not show a key absent", ErrProof, p.Kind)
	}
	if got := p.rootFrom(&k, end); got != root {
		return fmt.Errorf("%w: absence at depth %d gives root %x, want %x", ErrProof, n, got[:8], root[:8])
	}
	return nil
}

// VerifyList checks what a bundle claims for one map key: that the map
// with root holds l's commitment at k, or, when l is nil, that it holds
// nothing there (the child has no entry by that party).
func VerifyList(root Hash, k MapKey, l *List, p *Proof) error {
	if l == nil {
		return VerifyAbsence(root, k, p)
	}
	v, err := l.Commitment(k)
	if err != nil {
		return err
	}
	return VerifyInclusion(root, k, v, p)
}
