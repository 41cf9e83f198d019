package ledger

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/spoor-ledger/spoor/verifier"
)

// This file is what building an inzage bundle (ledger/answer) needs of the
// log beyond its plain reads: many inclusion proofs against one tree size,
// the covenant versions' leaves, and the keys a built bundle is checked
// with.

// Prover builds the inclusion proofs of one caller (an inzage bundle)
// against one tree size. Without a Merkle backend it builds them from the
// ledger's own tiles and remembers the node hashes it read, since proofs
// against one size share their upper nodes; with a backend each proof is
// the backend's. It is safe for concurrent use.
type Prover struct {
	l    *Ledger
	size uint64
	memo *proofMemo // nil with a Merkle backend
}

// Prover returns a Prover for the tree of size leaves.
func (l *Ledger) Prover(size uint64) *Prover {
	p := &Prover{l: l, size: size}
	if l.cfg.Merkle == nil {
		p.memo = &proofMemo{l: l}
	}
	return p
}

// Remote reports whether each proof is a call to the Merkle backend (with
// Trillian a round trip and a database query), which a caller asks several
// at once; a local proof is mostly tile reads, which it builds beside its
// other reads.
func (p *Prover) Remote() bool { return p.memo == nil }

// Proof returns the inclusion proof of leaf index in the Prover's tree.
func (p *Prover) Proof(ctx context.Context, index uint64) ([][]byte, error) {
	if p.memo == nil {
		return p.l.InclusionProof(ctx, index, p.size)
	}
	return p.l.localInclusionProof(ctx, index, p.size, p.memo)
}

// CovenantLeaves returns the leaf indices of the covenant versions logged
// in the first size leaves, version 1 first.
func (l *Ledger) CovenantLeaves(ctx context.Context, size uint64) ([]uint64, error) {
	var out []uint64
	err := l.store.Scan(ctx, []byte{tagCovenant}, []byte{tagCovenant + 1}, func(_, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("covenant index entry: %w", ErrCorrupt)
		}
		if idx := binary.BigEndian.Uint64(v); idx < size {
			out = append(out, idx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't list covenant versions: %w", err)
	}
	if len(out) == 0 || out[0] != 0 {
		return nil, fmt.Errorf("covenant version 1 is not at leaf 0: %w", ErrCorrupt)
	}
	return out, nil
}

// Keys returns the log's verifier keys (Config.Keys), which a built bundle
// is checked against, as a parent's verifier checks it.
func (l *Ledger) Keys() *verifier.LogKeys { return l.cfg.Keys }

// AdminVkey returns the administrator key of covenant version 1 that the
// ledger pins (Config.AdminVkey), "" when it pins none.
func (l *Ledger) AdminVkey() string { return l.cfg.AdminVkey }
