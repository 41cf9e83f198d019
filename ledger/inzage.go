package ledger

// This file builds inzage bundles: the answer, with proof, to an access
// request about one child (verifier/bundle.go defines the format).
//
// BuildBundle takes the head at the start, so that every proof in the
// bundle is against that ONE checkpoint; entries committed while it runs are
// left out (the next request sees them). It reads the data-subject index
// under every pseudonym of the child, the covenant versions and the leaf
// records, builds every inclusion proof from the stored tiles (the proofs
// share their upper nodes, which are read once per bundle), and before it
// hands the bundle out it checks what it built against the log's own keys
// and checkpoint (checkBuiltBundle): the same checks a parent's
// `spoor verify` makes, except that the discloser's Ed25519 signature on
// each envelope is not computed again. The ledger checked it at ingest, and
// the check here that SHA-256 of each envelope is the body hash of a leaf
// record proven to be in the signed checkpoint's tree binds the bytes to
// that check; a parent's verifier recomputes it anyway.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
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
// It returns the bundle's JSON and the bundle as checked with the log's
// keys and the administrator key the ledger pins (or, without one, the key
// of covenant version 1), from which the Dutch report is rendered. A
// bundle that does not check out is never returned: the error then wraps
// ErrCorrupt. See the file comment for the one check a parent's verifier
// makes that the builder leaves to it.
//
// Entries whose envelope has been erased are left out; the tombstones that
// the erasure notices still remember are listed (bundle "erased").
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
	bb := &bundleBuilder{l: l, size: size, memo: &proofMemo{l: l}}

	covs, err := l.covenantLeaves(ctx, size)
	if err != nil {
		return nil, nil, err
	}
	for _, idx := range covs {
		body, err := l.Entry(ctx, idx)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %d: %w", idx, err)
		}
		e, err := bb.entry(ctx, idx, nil, body)
		if err != nil {
			return nil, nil, err
		}
		b.Covenants = append(b.Covenants, e)
	}

	cands, err := l.subjectLeaves(ctx, req, size, inScope, bb.memo)
	if err != nil {
		return nil, nil, err
	}
	if l.cfg.Merkle == nil {
		// subjectLeaves built the inclusion proofs beside the reads.
		bb.fetched = make(map[uint64][][]byte, len(cands))
		for _, c := range cands {
			bb.fetched[c.index] = c.proof
		}
	} else {
		idxs := make([]uint64, len(cands))
		for i, c := range cands {
			idxs[i] = c.index
		}
		if err := bb.prefetch(ctx, idxs); err != nil {
			return nil, nil, err
		}
	}
	found := map[uint64]bool{}
	var opened []openedEntry
	for _, c := range cands {
		found[c.index] = true
		if ground, ok := req.Withheld[c.index]; ok {
			proof, err := bb.proof(ctx, c.index)
			if err != nil {
				return nil, nil, err
			}
			b.Withheld = append(b.Withheld, verifier.WithheldEntry{Index: c.index, LeafRecord: c.rec, InclusionProof: proof, Ground: ground})
			continue
		}
		e, err := bb.entry(ctx, c.index, c.rec, c.body)
		if err != nil {
			return nil, nil, err
		}
		b.Entries = append(b.Entries, e)
		opened = append(opened, c)
	}
	if err := l.addErased(ctx, bb, b, req, inScope); err != nil {
		return nil, nil, err
	}
	for idx := range req.Withheld {
		if !found[idx] {
			return nil, nil, fmt.Errorf("%w: leaf %d is not a disclosure about this child by a party in scope", ErrBundleRequest, idx)
		}
	}

	// The request's fields (id, relation, times) are checked here, by the
	// same code that checks them for the parent.
	if err := verifier.CheckBundle(b); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBundleRequest, err)
	}
	vb, err := l.checkBuiltBundle(b, head, l.cfg.AdminVkey, opened)
	if err != nil {
		return nil, nil, fmt.Errorf("the bundle built from the store does not verify: %w", errors.Join(err, ErrCorrupt))
	}
	data, err := verifier.MarshalBundle(b)
	if err != nil {
		return nil, nil, err
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

// openedEntry is a disclosure about the child read for a bundle: its leaf,
// its leaf record, its stored envelope, and the envelope parsed and decoded
// (not yet checked against a covenant); without a Merkle backend also its
// inclusion proof.
type openedEntry struct {
	index uint64
	rec   []byte
	body  []byte
	env   *events.Envelope
	d     *events.Disclosure
	proof [][]byte
}

// subjectRead is what readSubjectEntries read for one leaf.
type subjectRead struct {
	openedEntry
	erased bool
	err    error
}

// subjectLeaves returns, in log order, the disclosures below size about the
// child (under any of its pseudonyms, with the pseudonym's key id and id
// type) made by a party in scope (nil: all), each with its leaf record and
// envelope, read once for both the selection and the bundle, and, without
// a Merkle backend, its inclusion proof in the tree of size leaves (built
// with memo). Disclosures whose envelope was erased are skipped.
func (l *Ledger) subjectLeaves(ctx context.Context, req BundleRequest, size uint64, inScope map[string]bool, memo *proofMemo) ([]openedEntry, error) {
	type listed struct {
		idx uint64
		p   verifier.SubjectPseudonym
	}
	var all []listed
	var unique []uint64
	at := map[uint64]int{}
	for i, p := range req.Pseudonyms {
		idxs, err := l.BySubject(ctx, p.Pseudonym)
		if err != nil {
			return nil, fmt.Errorf("%w: pseudonyms[%d]: %w", ErrBundleRequest, i, err)
		}
		for _, idx := range idxs {
			if idx >= size {
				continue
			}
			all = append(all, listed{idx, p})
			if _, ok := at[idx]; !ok {
				at[idx] = len(unique)
				unique = append(unique, idx)
			}
		}
	}
	if l.cfg.Merkle != nil {
		memo = nil // the backend gives the proofs
	}
	reads := l.readSubjectEntries(ctx, unique, size, memo)

	seen := map[uint64]bool{}
	var out []openedEntry
	for _, x := range all {
		idx, p := x.idx, x.p
		if seen[idx] {
			continue
		}
		r := reads[at[idx]]
		switch {
		case r.err != nil:
			return nil, r.err
		case r.erased:
			continue
		}
		d := r.d
		if d.Subject.Pseudonym != p.Pseudonym {
			// The index said otherwise: the envelope was altered (its
			// body hash check would fail), or the index was.
			return nil, fmt.Errorf("entry %d is not about the pseudonym its subject index names: %w", idx, ErrCorrupt)
		}
		// The index is by pseudonym alone; the key and type must match
		// too, or it is another subject's.
		if d.Subject.KeyID != p.KeyID || d.Subject.IDType != req.IDType {
			continue
		}
		if inScope != nil && !inScope[d.Discloser] {
			continue
		}
		seen[idx] = true
		out = append(out, r.openedEntry)
	}
	slices.SortFunc(out, func(x, y openedEntry) int { return cmp.Compare(x.index, y.index) })
	return out, nil
}

// readConcurrency is how many store reads an inzage answer keeps in
// flight. Each disclosure of a child lies somewhere else in a large log, so
// its reads miss the block cache, and where the operating system has not
// kept the store's pages in memory they wait for the disk: with reads from
// many goroutines the disk answers several at once (on the 2-core VM of the
// README's Performance section, with the page cache dropped: about 190 µs
// a read one at a time, 65 µs each with 16 in flight). Reads the cache
// answers do not mind the extra goroutines.
const readConcurrency = 16

// readSubjectEntries reads the leaf record and envelope of each leaf and
// parses the envelope, readConcurrency at a time: these point reads are
// most of an inzage answer's time. With a memo (no Merkle backend) it also
// builds each leaf's inclusion proof in the tree of size leaves, so that
// the proofs' tile reads and hashing (in a large log each disclosure of a
// child lies in a full tile of its own, whose 254 inner nodes the first
// use hashes) run beside the entries' reads. The i-th result is for
// idxs[i].
func (l *Ledger) readSubjectEntries(ctx context.Context, idxs []uint64, size uint64, memo *proofMemo) []subjectRead {
	out := make([]subjectRead, len(idxs))
	read := func(i int) {
		r := &out[i]
		idx := idxs[i]
		r.index = idx
		body, err := l.Entry(ctx, idx)
		if errors.Is(err, ErrNotFound) {
			r.erased = true
			return
		}
		if err != nil {
			r.err = fmt.Errorf("entry %d: %w", idx, err)
			return
		}
		if r.rec, err = l.LeafRecordBytes(ctx, idx); err != nil {
			r.err = fmt.Errorf("leaf record %d: %w", idx, err)
			return
		}
		env, err := events.ParseEnvelope(body)
		if err != nil {
			r.err = fmt.Errorf("entry %d: %w", idx, errors.Join(err, ErrCorrupt))
			return
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			r.err = fmt.Errorf("entry %d: %w", idx, errors.Join(err, ErrCorrupt))
			return
		}
		if memo != nil {
			if r.proof, err = l.localInclusionProof(ctx, idx, size, memo); err != nil {
				r.err = fmt.Errorf("inclusion proof of leaf %d: %w", idx, err)
				return
			}
		}
		r.body, r.env, r.d = body, env, d
	}
	parallel.For(len(idxs), readConcurrency, 1, read)
	return out
}

// bundleBuilder reads the parts of one bundle against one tree size.
type bundleBuilder struct {
	l    *Ledger
	size uint64
	memo *proofMemo
	// fetched holds inclusion proofs asked of the Merkle backend ahead of
	// time (prefetch); nil without a backend.
	fetched map[uint64][][]byte
}

// backendProofCalls bounds the inclusion-proof calls to the Merkle backend
// that one bundle has in flight.
const backendProofCalls = 16

// prefetch asks the Merkle backend for the inclusion proofs of idxs,
// several calls at a time: with Trillian each proof is a round trip (and a
// database query), so fifty of them one after another are most of the
// answer's time, and they do not depend on each other.
func (bb *bundleBuilder) prefetch(ctx context.Context, idxs []uint64) error {
	proofs := make([][][]byte, len(idxs))
	errs := make([]error, len(idxs))
	sem := make(chan struct{}, backendProofCalls)
	var wg sync.WaitGroup
	for i, idx := range idxs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			proofs[i], errs[i] = bb.l.InclusionProof(ctx, idx, bb.size)
		}()
	}
	wg.Wait()
	if bb.fetched == nil {
		bb.fetched = make(map[uint64][][]byte, len(idxs))
	}
	for i, idx := range idxs {
		if errs[i] != nil {
			return fmt.Errorf("inclusion proof of leaf %d: %w", idx, errs[i])
		}
		bb.fetched[idx] = proofs[i]
	}
	return nil
}

// entry returns leaf idx with its leaf record (read here when nil), body
// and proof.
func (bb *bundleBuilder) entry(ctx context.Context, idx uint64, rec, body []byte) (verifier.BundleEntry, error) {
	if rec == nil {
		var err error
		if rec, err = bb.l.LeafRecordBytes(ctx, idx); err != nil {
			return verifier.BundleEntry{}, fmt.Errorf("leaf record %d: %w", idx, err)
		}
	}
	proof, err := bb.proof(ctx, idx)
	if err != nil {
		return verifier.BundleEntry{}, err
	}
	return verifier.BundleEntry{Index: idx, LeafRecord: rec, Envelope: body, InclusionProof: proof}, nil
}

// proof returns the inclusion proof of leaf idx: from the Merkle backend
// when the ledger has one (InclusionProof), otherwise from the ledger's own
// tiles with the bundle's shared node memo.
func (bb *bundleBuilder) proof(ctx context.Context, idx uint64) ([]verifier.Base64Bytes, error) {
	var p [][]byte
	var err error
	if pre, ok := bb.fetched[idx]; ok {
		p = pre
	} else if bb.l.cfg.Merkle != nil {
		p, err = bb.l.InclusionProof(ctx, idx, bb.size)
	} else {
		p, err = bb.l.localInclusionProof(ctx, idx, bb.size, bb.memo)
	}
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
func (l *Ledger) addErased(ctx context.Context, bb *bundleBuilder, b *verifier.Bundle, req BundleRequest, inScope map[string]bool) error {
	for _, p := range req.Pseudonyms {
		notices, err := l.ErasureNotices(ctx, p.Pseudonym)
		if err != nil {
			return err
		}
		for _, n := range notices {
			if n.TombstoneIndex >= bb.size || (inScope != nil && !inScope[n.Discloser]) {
				continue
			}
			recBytes, err := l.LeafRecordBytes(ctx, n.TombstoneIndex)
			if err != nil {
				return fmt.Errorf("leaf record %d: %w", n.TombstoneIndex, err)
			}
			rec, err := verifier.ParseLeafRecord(recBytes)
			if err != nil {
				return fmt.Errorf("leaf record %d: %w", n.TombstoneIndex, errors.Join(err, ErrCorrupt))
			}
			body, err := l.Entry(ctx, n.TombstoneIndex)
			if err != nil {
				return fmt.Errorf("tombstone %d: %w", n.TombstoneIndex, err)
			}
			proof, err := bb.proof(ctx, n.TombstoneIndex)
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

// checkBuiltBundle checks a bundle the ledger has just built, in the order
// and with the sentinels of verifier.VerifyBundle, and returns it as
// verified: the named keys are the ledger's; the checkpoint is its head and
// verifies; the covenant chain from version 1 verifies (cached: the chain
// of a log changes only when a version is added); every leaf record has
// its type, the body hash of its entry and an inclusion proof that leads to
// the checkpoint's root; every disclosure names the covenant version in
// force when it was logged, passes events.Open's checks under it (payload
// type, schema, origin, the discloser's key in force and not revoked) but
// for the signature equation itself (see the file comment), and is about
// the bundle's subject; integrated_at never goes back. opened holds the
// bundle's disclosures in order, as subjectLeaves read them. The first
// failure is returned.
func (l *Ledger) checkBuiltBundle(b *verifier.Bundle, head *Head, admin string, opened []openedEntry) (*verifier.VerifiedBundle, error) {
	keys := l.cfg.Keys
	if keys == nil || keys.Log == nil || keys.Cosigner == nil {
		return nil, verifier.ErrPinnedKeys
	}
	admin = strings.TrimSpace(admin)
	if admin != "" {
		if _, err := events.AdminPublicKey(admin); err != nil {
			return nil, fmt.Errorf("%w: the administrator key %w", verifier.ErrPinnedKeys, err)
		}
	}
	vb := &verifier.VerifiedBundle{
		Bundle:      b,
		LogKey:      verifier.NoteKeyFingerprint(keys.Log),
		CosignerKey: verifier.NoteKeyFingerprint(keys.Cosigner),
	}
	named, err := verifier.ParseLogKeys(b.LogVkey, b.CosignerVkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", verifier.ErrBundleKeys, err)
	}
	if verifier.NoteKeyFingerprint(named.Log) != vb.LogKey || verifier.NoteKeyFingerprint(named.Cosigner) != vb.CosignerKey {
		return nil, fmt.Errorf("%w: the request names keys %s and %s, the ledger's are %s and %s", verifier.ErrBundleKeys,
			verifier.NoteKeyFingerprint(named.Log), verifier.NoteKeyFingerprint(named.Cosigner), vb.LogKey, vb.CosignerKey)
	}
	cp, err := openHeadCheckpoint(head.Note, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", verifier.ErrCheckpoint, err)
	}
	if cp.Origin != b.Origin || cp.Size != head.Size || cp.Hash != head.Root {
		return nil, fmt.Errorf("%w: the head's checkpoint does not state the head's origin, size and root", verifier.ErrCheckpoint)
	}
	vb.Checkpoint = cp
	origin := keys.Log.Name()

	leaf := func(section string, index uint64, recBytes []byte, proof []verifier.Base64Bytes, want verifier.EntryType) (*verifier.LeafRecord, error) {
		rec, err := verifier.ParseLeafRecord(recBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: leaf %d: %w: %w", section, index, verifier.ErrLeafMismatch, err)
		}
		if rec.Type != want {
			return nil, fmt.Errorf("%s: leaf %d: %w: the leaf is a %s entry, not a %s", section, index, verifier.ErrLeafMismatch, rec.Type, want)
		}
		if index >= cp.Size {
			return nil, fmt.Errorf("%s: leaf %d: %w: beyond the checkpoint's tree of size %d", section, index, verifier.ErrInclusion, cp.Size)
		}
		hashes := make([][]byte, len(proof))
		for i := range proof {
			hashes[i] = proof[i]
		}
		if err := verifier.VerifyInclusion(index, cp.Size, verifier.LeafHash(recBytes), hashes, cp.Hash); err != nil {
			return nil, fmt.Errorf("%s: leaf %d: %w: %w", section, index, verifier.ErrInclusion, err)
		}
		return rec, nil
	}
	var stamps []timeStamp

	covRecs := make([]*verifier.LeafRecord, len(b.Covenants))
	for i, e := range b.Covenants {
		rec, err := leaf("covenants", e.Index, e.LeafRecord, e.InclusionProof, verifier.EntryCovenant)
		if err != nil {
			return nil, err
		}
		switch {
		case rec.BodyHash != sha256.Sum256(e.Envelope):
			return nil, fmt.Errorf("covenants: leaf %d: %w: the leaf record's body hash is not SHA-256 of the signed covenant", e.Index, verifier.ErrLeafMismatch)
		case i == 0 && (e.Index != 0 || rec.CovenantIndex != 0):
			return nil, fmt.Errorf("covenants: %w: covenant version 1 must be leaf 0 and name itself", verifier.ErrCovenant)
		case i > 0 && rec.CovenantIndex != b.Covenants[i-1].Index:
			return nil, fmt.Errorf("covenants: leaf %d: %w: the leaf record names covenant leaf %d, not the previous version at leaf %d",
				e.Index, verifier.ErrCovenant, rec.CovenantIndex, b.Covenants[i-1].Index)
		}
		covRecs[i] = rec
		stamps = append(stamps, timeStamp{e.Index, rec.IntegratedAt})
	}
	versions, err := verifiedCovenants(b.Covenants, origin, admin)
	if err != nil {
		return nil, err
	}
	if admin == "" {
		// No pinned key: the bundle is checked with the key version 1
		// names, as a parent would pin it from the covenant's own file.
		admin = strings.TrimSpace(versions[0].Covenant.Administrator.Key)
	}
	vb.AdminKey = verifier.KeyFingerprint(admin)
	covByIndex := make(map[uint64]*verifier.VerifiedCovenant, len(versions))
	covIndices := make([]uint64, len(versions))
	for i, sc := range versions {
		vc := &verifier.VerifiedCovenant{Index: b.Covenants[i].Index, IntegratedAt: covRecs[i].IntegratedAt, Signed: sc}
		vb.Covenants = append(vb.Covenants, vc)
		covByIndex[vc.Index] = vc
		covIndices[i] = vc.Index
	}

	subjects := map[verifier.SubjectPseudonym]bool{}
	for _, p := range b.Subject.Pseudonyms {
		subjects[p] = true
	}
	if len(opened) != len(b.Entries) {
		return nil, fmt.Errorf("entries: %d in the bundle, %d read", len(b.Entries), len(opened))
	}
	// Each disclosure is checked on its own (on every core); the first
	// failure in the bundle's order is the one returned.
	checkEntry := func(i int) (*verifier.VerifiedDisclosure, error) {
		e, o := b.Entries[i], opened[i]
		if o.index != e.Index {
			return nil, fmt.Errorf("entries[%d]: leaf %d in the bundle, %d read", i, e.Index, o.index)
		}
		rec, err := leaf("entries", e.Index, e.LeafRecord, e.InclusionProof, verifier.EntryDisclosure)
		if err != nil {
			return nil, err
		}
		if rec.BodyHash != sha256.Sum256(e.Envelope) {
			return nil, fmt.Errorf("entries: leaf %d: %w: the leaf record's body hash is not SHA-256 of the envelope", e.Index, verifier.ErrLeafMismatch)
		}
		vc, ok := covByIndex[rec.CovenantIndex]
		if !ok || rec.CovenantIndex >= e.Index {
			return nil, fmt.Errorf("entries: leaf %d: %w: the leaf names covenant leaf %d, not a covenant version of this bundle before it",
				e.Index, verifier.ErrCovenant, rec.CovenantIndex)
		}
		if j, _ := slices.BinarySearch(covIndices, e.Index); j > 0 && covIndices[j-1] != rec.CovenantIndex {
			return nil, fmt.Errorf("entries: leaf %d: %w: checked against covenant leaf %d, but leaf %d was logged before it",
				e.Index, verifier.ErrCovenant, rec.CovenantIndex, covIndices[j-1])
		}
		cov := vc.Signed.Covenant
		d := o.d
		switch {
		case o.env.PayloadType != events.PayloadType:
			return nil, fmt.Errorf("entries: leaf %d: %w: payload type %q", e.Index, verifier.ErrSignature, o.env.PayloadType)
		case d.Origin != origin:
			return nil, fmt.Errorf("entries: leaf %d: %w: the event is for another log", e.Index, verifier.ErrSignature)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("entries: leaf %d: %w: %w", e.Index, verifier.ErrSignature, err)
		}
		if _, err := cov.PartyKey(d.Discloser, o.env.KeyID, d.OccurredAt); err != nil {
			return nil, fmt.Errorf("entries: leaf %d: %w: %w", e.Index, verifier.ErrSignature, err)
		}
		if d.Subject.IDType != b.Subject.IDType || !subjects[verifier.SubjectPseudonym{KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym}] {
			return nil, fmt.Errorf("entries: leaf %d: %w", e.Index, verifier.ErrOtherSubject)
		}
		findings := append(cov.Check(d), cov.CheckRecording(d, rec.IntegratedAt)...)
		return &verifier.VerifiedDisclosure{Index: e.Index, IntegratedAt: rec.IntegratedAt,
			Disclosure: d, Covenant: cov, CovenantIndex: vc.Index, Findings: findings}, nil
	}
	checked := make([]*verifier.VerifiedDisclosure, len(b.Entries))
	errs := make([]error, len(b.Entries))
	parallel.For(len(b.Entries), 0, 8, func(i int) { checked[i], errs[i] = checkEntry(i) })
	for i, vd := range checked {
		if errs[i] != nil {
			return nil, errs[i]
		}
		stamps = append(stamps, timeStamp{vd.Index, vd.IntegratedAt})
		vb.Disclosures = append(vb.Disclosures, vd)
	}

	for _, e := range b.Withheld {
		rec, err := leaf("withheld", e.Index, e.LeafRecord, e.InclusionProof, verifier.EntryDisclosure)
		if err != nil {
			return nil, err
		}
		stamps = append(stamps, timeStamp{e.Index, rec.IntegratedAt})
		vb.Withheld = append(vb.Withheld, &verifier.VerifiedWithheld{Index: e.Index, IntegratedAt: rec.IntegratedAt, Ground: e.Ground})
	}

	for _, e := range b.Erased {
		rec, err := leaf("erased", e.Index, e.LeafRecord, e.InclusionProof, verifier.EntryTombstone)
		if err != nil {
			return nil, err
		}
		stamps = append(stamps, timeStamp{e.Index, rec.IntegratedAt})
		switch {
		case rec.ErasedIndex != e.ErasedIndex || rec.RuleID != e.RuleID || !rec.IntegratedAt.Equal(e.ErasedAt):
			return nil, fmt.Errorf("erased: leaf %d: %w: erased_index, rule_id or erased_at differ from the leaf record", e.Index, verifier.ErrLeafMismatch)
		case rec.ErasedIndex >= e.Index:
			return nil, fmt.Errorf("erased: leaf %d: %w: erases leaf %d, which is not before it", e.Index, verifier.ErrLeafMismatch, rec.ErasedIndex)
		case e.Body != nil && rec.BodyHash != sha256.Sum256(e.Body):
			return nil, fmt.Errorf("erased: leaf %d: %w: the leaf record's body hash is not SHA-256 of the tombstone body", e.Index, verifier.ErrLeafMismatch)
		}
		vb.Erased = append(vb.Erased, &verifier.VerifiedErasure{Index: e.Index, ErasedIndex: rec.ErasedIndex, RuleID: rec.RuleID, ErasedAt: rec.IntegratedAt})
	}

	// The ledger keeps integrated_at monotonic along the log.
	slices.SortFunc(stamps, func(x, y timeStamp) int { return cmp.Compare(x.index, y.index) })
	for i := 1; i < len(stamps); i++ {
		if stamps[i].at.Before(stamps[i-1].at) {
			return nil, fmt.Errorf("leaf %d: %w: recorded before leaf %d", stamps[i].index, verifier.ErrLeafMismatch, stamps[i-1].index)
		}
	}
	return vb, nil
}

// timeStamp is a leaf's integrated_at, for the check that it never goes
// back along the log.
type timeStamp struct {
	index uint64
	at    time.Time
}

// headCheckpoint remembers the newest head checkpoint opened for a bundle:
// every bundle built until the next commit is against it, and opening it
// costs two signature checks.
var headCheckpoint struct {
	mu   sync.Mutex
	note []byte
	keys *verifier.LogKeys
	cp   verifier.Checkpoint
}

// openHeadCheckpoint opens the head's signed note with keys, or returns a
// copy of the one opened for the same note and keys before.
func openHeadCheckpoint(noteBytes []byte, keys *verifier.LogKeys) (*verifier.Checkpoint, error) {
	hc := &headCheckpoint
	hc.mu.Lock()
	if hc.keys == keys && bytes.Equal(hc.note, noteBytes) {
		cp := hc.cp
		hc.mu.Unlock()
		return &cp, nil
	}
	hc.mu.Unlock()
	cp, err := verifier.OpenCheckpoint(noteBytes, keys)
	if err != nil {
		return nil, err
	}
	hc.mu.Lock()
	hc.note, hc.keys, hc.cp = bytes.Clone(noteBytes), keys, *cp
	hc.mu.Unlock()
	return cp, nil
}

// covenantChains remembers verified covenant chains, keyed by the
// administrator key, the origin and the SHA-256 of every signed version in
// order. Parsing and checking a chain costs milliseconds (YAML and a
// signature per version) and a log's chain only grows; the key covers
// every byte checked, so a hit is the same verdict on the same input.
var covenantChains struct {
	mu     sync.Mutex
	chains map[[32]byte][]*events.SignedCovenant
}

// maxCachedChains bounds covenantChains: one chain per ledger in the
// process and a few versions each.
const maxCachedChains = 16

// verifiedCovenants verifies the signed covenants of a bundle as one chain,
// as verifier.VerifyBundle does: version 1 is for origin and names and is
// signed by admin (empty: by the key it names itself); each next version is
// signed by the previous version's administrator and follows it
// (events.Chain). It returns each version as the chain holds it.
func verifiedCovenants(covs []verifier.BundleEntry, origin, admin string) ([]*events.SignedCovenant, error) {
	h := sha256.New()
	h.Write([]byte(admin))
	h.Write([]byte{0})
	h.Write([]byte(origin))
	h.Write([]byte{0})
	for _, e := range covs {
		body := sha256.Sum256(e.Envelope)
		h.Write(body[:])
	}
	var key [32]byte
	h.Sum(key[:0])
	cc := &covenantChains
	cc.mu.Lock()
	got, ok := cc.chains[key]
	cc.mu.Unlock()
	if ok {
		return got, nil
	}
	var chain *events.Chain
	out := make([]*events.SignedCovenant, len(covs))
	for i, e := range covs {
		sc, err := events.ParseSignedCovenant(e.Envelope)
		if err != nil {
			return nil, fmt.Errorf("covenants: leaf %d: %w: %w", e.Index, verifier.ErrCovenant, err)
		}
		if i == 0 {
			if sc.Covenant.Origin != origin {
				return nil, fmt.Errorf("covenants: %w: covenant version 1 is for origin %q, the log is %q", verifier.ErrCovenant, sc.Covenant.Origin, origin)
			}
			pin := admin
			if pin == "" {
				pin = sc.Covenant.Administrator.Key
			}
			if chain, err = events.NewChain(sc, pin); err != nil {
				return nil, fmt.Errorf("covenants: leaf %d: %w: %w", e.Index, verifier.ErrCovenant, err)
			}
		} else if err := chain.Append(sc); err != nil {
			return nil, fmt.Errorf("covenants: leaf %d: %w: %w", e.Index, verifier.ErrCovenant, err)
		}
		out[i] = chain.Latest()
	}
	cc.mu.Lock()
	if cc.chains == nil || len(cc.chains) >= maxCachedChains {
		cc.chains = map[[32]byte][]*events.SignedCovenant{}
	}
	cc.chains[key] = out
	cc.mu.Unlock()
	return out, nil
}
