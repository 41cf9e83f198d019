package ledger

// This file builds inzage bundles: the answer, with proof, to an access
// request about one child (verifier/bundle.go defines the format).
//
// BuildBundle takes the head at the start, so that every proof in the
// bundle is against that ONE checkpoint; entries committed while it runs are
// left out (the next request sees them). It reads the data-subject index
// under every pseudonym of the child, the covenant versions and the leaf
// records, and before it hands the bundle out it checks it exactly as a
// parent's `spoor verify` will, with the log's own keys.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// BundleRequest says which child an inzage bundle is about and whose
// disclosures it covers. The inzage workflow (request, release by a second
// person) fills it in; BuildBundle does not decide who may ask.
type BundleRequest struct {
	// IDType is the kind of number the pseudonyms were made from.
	IDType events.IDType
	// Pseudonyms are the child's pseudonyms, one under each pseudonym key
	// in use (the covenant's subject_keys): a request looks under every
	// key, since events made before a key rotation carry the old one.
	Pseudonyms []verifier.SubjectPseudonym
	// Parties are the parties the answering desk answers for: disclosures
	// they made are in the bundle. Nil means all parties (the covenant's
	// central desk answers for everyone).
	Parties []string
	// Withheld maps leaf indices of disclosures about the child that are
	// withheld on a legal ground to that ground (verifier.WithholdAVG23,
	// verifier.WithholdUAVG41). Each must be a disclosure the bundle would
	// otherwise show.
	Withheld map[uint64]string
	// Request is the access request's id, the requester's relation to the
	// child and when it was made and released.
	Request verifier.InzageRequest
	// LogVkey and CosignerVkey are the log's verifier keys (the contents
	// of DIR/log.vkey and DIR/cosigner.vkey), written into the bundle for
	// information; verifiers compare them with the keys they pin.
	LogVkey, CosignerVkey string
	// CreatedAt is the bundle's creation time; zero means the ledger's
	// clock now.
	CreatedAt time.Time
}

// ErrBundleRequest means a BundleRequest cannot be answered as given: a
// malformed pseudonym, an unknown party, a withheld index that is not one
// of the child's disclosures in scope.
var ErrBundleRequest = errors.New("ledger: invalid bundle request")

// BuildBundle builds the inzage bundle for req against the current head: the
// covenant chain up to the head, every disclosure about the child by the
// parties in scope (or, if withheld, its leaf and ground), each with its
// leaf record and inclusion proof, and the head's checkpoint. A child
// without disclosures gets a bundle that verifies and says so.
//
// It returns the bundle's JSON and the bundle as verified with the log's
// keys and the administrator key the ledger pins (or, without one, the key
// of covenant version 1), from which the Dutch report is rendered. A
// bundle that does not verify is never returned: the error then wraps
// ErrCorrupt.
//
// Entries whose envelope has been erased are left out; listing their
// tombstones (bundle "erased") comes with the retention job.
func (l *Ledger) BuildBundle(ctx context.Context, req BundleRequest) ([]byte, *verifier.VerifiedBundle, error) {
	head := l.Head()
	if head == nil {
		return nil, nil, errors.New("ledger: the log has no checkpoint yet")
	}
	size := head.Size
	cur, _ := l.Covenant()
	if n := len(req.Pseudonyms); n == 0 || n > verifier.MaxBundlePseudonyms {
		return nil, nil, fmt.Errorf("%w: %d pseudonyms, want 1 to %d", ErrBundleRequest, n, verifier.MaxBundlePseudonyms)
	}
	var inScope map[string]bool
	if req.Parties != nil {
		inScope = map[string]bool{}
		for _, p := range req.Parties {
			if _, ok := cur.Covenant.Party(p); !ok {
				return nil, nil, fmt.Errorf("%w: %q is not a party of the covenant", ErrBundleRequest, p)
			}
			inScope[p] = true
		}
	}
	for idx, ground := range req.Withheld {
		if _, ok := verifier.WithholdGroundLabelNL(ground); !ok {
			return nil, nil, fmt.Errorf("%w: leaf %d: withholding ground %q is not %s or %s", ErrBundleRequest, idx, ground,
				verifier.WithholdAVG23, verifier.WithholdUAVG41)
		}
	}

	b := &verifier.Bundle{
		Format:       verifier.BundleFormat,
		Origin:       l.origin,
		CreatedAt:    req.CreatedAt,
		Subject:      verifier.BundleSubject{IDType: req.IDType, Pseudonyms: slices.Clone(req.Pseudonyms)},
		Scope:        verifier.BundleScope{Parties: slices.Clone(req.Parties), CentralDesk: req.Parties == nil},
		Request:      req.Request,
		Checkpoint:   string(head.Note),
		LogVkey:      req.LogVkey,
		CosignerVkey: req.CosignerVkey,
		Covenants:    []verifier.BundleEntry{},
		Entries:      []verifier.BundleEntry{},
		Withheld:     []verifier.WithheldEntry{},
		Erased:       []verifier.ErasedEntry{},
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = l.cfg.Now().UTC().Truncate(time.Millisecond)
	}
	if req.Parties == nil {
		for _, p := range cur.Covenant.Parties {
			b.Scope.Parties = append(b.Scope.Parties, p.ID)
		}
	}

	covs, err := l.covenantLeaves(ctx, size)
	if err != nil {
		return nil, nil, err
	}
	for _, idx := range covs {
		e, err := l.bundleEntry(ctx, idx, size)
		if err != nil {
			return nil, nil, err
		}
		b.Covenants = append(b.Covenants, e)
	}

	leaves, err := l.subjectLeaves(ctx, req, size, inScope)
	if err != nil {
		return nil, nil, err
	}
	found := map[uint64]bool{}
	for _, idx := range leaves {
		found[idx] = true
		if ground, ok := req.Withheld[idx]; ok {
			rec, err := l.LeafRecordBytes(ctx, idx)
			if err != nil {
				return nil, nil, fmt.Errorf("leaf record %d: %w", idx, err)
			}
			proof, err := l.bundleProof(ctx, idx, size)
			if err != nil {
				return nil, nil, err
			}
			b.Withheld = append(b.Withheld, verifier.WithheldEntry{Index: idx, LeafRecord: rec, InclusionProof: proof, Ground: ground})
			continue
		}
		e, err := l.bundleEntry(ctx, idx, size)
		if err != nil {
			return nil, nil, err
		}
		b.Entries = append(b.Entries, e)
	}
	if err := l.addErased(ctx, b, req, size, inScope); err != nil {
		return nil, nil, err
	}
	for idx := range req.Withheld {
		if !found[idx] {
			return nil, nil, fmt.Errorf("%w: leaf %d is not a disclosure about this child by a party in scope", ErrBundleRequest, idx)
		}
	}

	data, err := verifier.MarshalBundle(b)
	if err != nil {
		return nil, nil, err
	}
	if _, err := verifier.ParseBundle(data); err != nil {
		// The request's fields (id, relation, times) are checked here,
		// by the same code that checks them for the parent.
		return nil, nil, fmt.Errorf("%w: %w", ErrBundleRequest, err)
	}
	admin := l.cfg.AdminVkey
	if admin == "" {
		first, err := events.ParseSignedCovenant(b.Covenants[0].Envelope)
		if err != nil {
			return nil, nil, fmt.Errorf("covenant version 1: %w", errors.Join(err, ErrCorrupt))
		}
		admin = first.Covenant.Administrator.Key
	}
	vb, err := verifier.VerifyBundle(data, l.cfg.Keys, admin)
	if err != nil {
		return nil, nil, fmt.Errorf("the bundle built from the store does not verify: %w", errors.Join(err, ErrCorrupt))
	}
	return data, vb, nil
}

// covenantLeaves returns the leaf indices of the covenant versions logged
// in the first size leaves, version 1 first.
func (l *Ledger) covenantLeaves(ctx context.Context, size uint64) ([]uint64, error) {
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

// subjectLeaves returns, in log order, the leaves below size of the
// disclosures about the child (under any of its pseudonyms, with the
// pseudonym's key id and id type) made by a party in scope (nil: all).
// Disclosures whose envelope was erased are skipped.
func (l *Ledger) subjectLeaves(ctx context.Context, req BundleRequest, size uint64, inScope map[string]bool) ([]uint64, error) {
	seen := map[uint64]bool{}
	var out []uint64
	for i, p := range req.Pseudonyms {
		idxs, err := l.BySubject(ctx, p.Pseudonym)
		if err != nil {
			return nil, fmt.Errorf("%w: pseudonyms[%d]: %w", ErrBundleRequest, i, err)
		}
		for _, idx := range idxs {
			if idx >= size || seen[idx] {
				continue
			}
			body, err := l.Entry(ctx, idx)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", idx, err)
			}
			env, err := events.ParseEnvelope(body)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", idx, errors.Join(err, ErrCorrupt))
			}
			d, err := events.DecodeDisclosure(env.Payload)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", idx, errors.Join(err, ErrCorrupt))
			}
			// The index is by pseudonym alone; the key and type must
			// match too, or it is another subject's.
			if d.Subject.Pseudonym != p.Pseudonym || d.Subject.KeyID != p.KeyID || d.Subject.IDType != req.IDType {
				continue
			}
			if inScope != nil && !inScope[d.Discloser] {
				continue
			}
			seen[idx] = true
			out = append(out, idx)
		}
	}
	slices.Sort(out)
	return out, nil
}

// bundleEntry returns leaf idx with its body and its proof in a tree of
// size.
func (l *Ledger) bundleEntry(ctx context.Context, idx, size uint64) (verifier.BundleEntry, error) {
	rec, err := l.LeafRecordBytes(ctx, idx)
	if err != nil {
		return verifier.BundleEntry{}, fmt.Errorf("leaf record %d: %w", idx, err)
	}
	body, err := l.Entry(ctx, idx)
	if err != nil {
		return verifier.BundleEntry{}, fmt.Errorf("entry %d: %w", idx, err)
	}
	proof, err := l.bundleProof(ctx, idx, size)
	if err != nil {
		return verifier.BundleEntry{}, err
	}
	return verifier.BundleEntry{Index: idx, LeafRecord: rec, Envelope: body, InclusionProof: proof}, nil
}

func (l *Ledger) bundleProof(ctx context.Context, idx, size uint64) ([]verifier.Base64Bytes, error) {
	p, err := l.InclusionProof(ctx, idx, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of leaf %d: %w", idx, err)
	}
	out := make([]verifier.Base64Bytes, len(p))
	for i := range p {
		out[i] = p[i]
	}
	return out, nil
}

// addErased adds the tombstones of this child's erased disclosures that the
// erasure notices still remember, so the parent is told what was erased,
// when and why.
func (l *Ledger) addErased(ctx context.Context, b *verifier.Bundle, req BundleRequest, size uint64, inScope map[string]bool) error {
	for _, p := range req.Pseudonyms {
		notices, err := l.ErasureNotices(ctx, p.Pseudonym)
		if err != nil {
			return err
		}
		for _, n := range notices {
			if n.TombstoneIndex >= size || (inScope != nil && !inScope[n.Discloser]) {
				continue
			}
			rec, err := l.LeafRecord(ctx, n.TombstoneIndex)
			if err != nil {
				return err
			}
			recBytes, err := l.LeafRecordBytes(ctx, n.TombstoneIndex)
			if err != nil {
				return err
			}
			body, err := l.Entry(ctx, n.TombstoneIndex)
			if err != nil {
				return fmt.Errorf("tombstone %d: %w", n.TombstoneIndex, err)
			}
			proof, err := l.bundleProof(ctx, n.TombstoneIndex, size)
			if err != nil {
				return err
			}
			b.Erased = append(b.Erased, verifier.ErasedEntry{Index: n.TombstoneIndex, LeafRecord: recBytes,
				InclusionProof: proof, Body: body, ErasedIndex: rec.ErasedIndex, RuleID: rec.RuleID, ErasedAt: rec.IntegratedAt})
		}
	}
	slices.SortFunc(b.Erased, func(x, y verifier.ErasedEntry) int { return cmp.Compare(x.Index, y.Index) })
	return nil
}
