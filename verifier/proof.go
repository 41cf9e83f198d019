package verifier

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrProof is returned (wrapped, with detail) when an inclusion or
// consistency proof does not verify, or when data read from a log does not
// match a hash that a verified checkpoint commits to.
var ErrProof = errors.New("verifier: proof does not verify")

// emptyRoot is the RFC 6962 root of the empty tree: SHA-256 of nothing.
var emptyRoot = sha256.Sum256(nil)

// VerifyInclusion checks that the leaf with the given RFC 6962 leaf hash is
// at index in the tree of the given size and root, using an audit path as
// RFC 6962 section 2.1.1 defines it (the order both
// github.com/transparency-dev/merkle and golang.org/x/mod/sumdb/tlog use).
func VerifyInclusion(index, size uint64, leafHash [32]byte, proofHashes [][]byte, root [32]byte) error {
	if err := checkHashLengths(proofHashes); err != nil {
		return err
	}
	if err := proof.VerifyInclusion(proofHasher, index, size, leafHash[:], proofHashes, root[:]); err != nil {
		return fmt.Errorf("%w: inclusion of leaf %d in tree of size %d: %w", ErrProof, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size oldSize and root oldRoot
// is a prefix of the tree of size newSize and root newRoot. The proof is
// empty when the sizes are equal (then the roots must be equal) and when
// oldSize is zero (then oldRoot must be the empty tree's root).
func VerifyConsistency(oldSize, newSize uint64, oldRoot, newRoot [32]byte, proofHashes [][]byte) error {
	if err := checkHashLengths(proofHashes); err != nil {
		return err
	}
	if oldSize == 0 {
		// The empty tree is a prefix of every tree, with an empty proof.
		// (transparency-dev/merkle refuses size 0 as "meaningless" since
		// v0.0.3; the rule itself has not changed.)
		if oldRoot != emptyRoot {
			return fmt.Errorf("%w: root of the empty tree is not SHA-256 of nothing", ErrProof)
		}
		if len(proofHashes) != 0 {
			return fmt.Errorf("%w: consistency of tree size 0 with %d: a proof from the empty tree is empty", ErrProof, newSize)
		}
		return nil
	}
	if err := proof.VerifyConsistency(proofHasher, oldSize, newSize, proofHashes, oldRoot[:], newRoot[:]); err != nil {
		return fmt.Errorf("%w: consistency of tree size %d with %d: %w", ErrProof, oldSize, newSize, err)
	}
	return nil
}

// checkHashLengths refuses proof elements that are not 32 bytes, which the
// merkle package would otherwise hash along (and fail later, less clearly).
func checkHashLengths(hashes [][]byte) error {
	for i, h := range hashes {
		if len(h) != sha256.Size {
			return fmt.Errorf("%w: proof element %d is %d bytes, want %d", ErrProof, i, len(h), sha256.Size)
		}
	}
	return nil
}

// logHasher is RFC 6962's hasher with HashChildren from one stack buffer:
// rfc6962.DefaultHasher allocates a SHA-256 state per node, and an inzage
// bundle's proofs hash about twenty nodes per disclosure, once when the
// ledger checks what it built and again in the parent's verifier.
type logHasher struct{ *rfc6962.Hasher }

func (logHasher) HashChildren(l, r []byte) []byte { return HashChildren(l, r) }

var proofHasher = logHasher{rfc6962.DefaultHasher}

// HashChildren is RFC 6962's interior node hash, SHA-256(0x01 || left ||
// right), as rfc6962.DefaultHasher.HashChildren computes it, with one
// allocation (the result) instead of a hasher and its buffers per node:
// for a compact.RangeFactory that rebuilds a tree of millions of leaves.
func HashChildren(left, right []byte) []byte {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 1
	if len(left) != sha256.Size || len(right) != sha256.Size {
		// Not a node of this tree; hash what was given, as rfc6962 would.
		return rfc6962.DefaultHasher.HashChildren(left, right)
	}
	copy(buf[1:], left)
	copy(buf[1+sha256.Size:], right)
	h := sha256.Sum256(buf[:])
	return h[:]
}
