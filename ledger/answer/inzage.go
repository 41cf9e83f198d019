package answer

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
// and checkpoint (checkBuiltBundle) with verifier.VerifyParsedBundle: the
// code of a parent's `spoor verify` itself, with the option
// (verifier.SignaturesCheckedAtIngest) that the discloser's Ed25519
// signature on each envelope is not computed again. The ledger checked it
// at ingest, and the check that SHA-256 of each envelope is the body hash
// of a leaf record proven to be in the signed checkpoint's tree binds the
// bytes to that check; a parent's verifier recomputes it anyway.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/ledger"
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
	// Answer, when set, builds the v2 bundle of a logged answer entry:
	// exactly the leaves its body lists (selected below the tree size it
	// answered at), with the body's request, scope and creation time,
	// proven in the newest checkpoint that covers the entry (a witnessed
	// one under a witness policy, else ledger.ErrNotWitnessed), and the
	// entry itself with its proof.
	Answer *LoggedAnswer
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
func (s *Service) BuildBundle(ctx context.Context, req BundleRequest) ([]byte, *verifier.VerifiedBundle, error) {
	l := s.l
	var head *ledger.Head
	var err error
	selectBelow := uint64(0)
	if req.Answer != nil {
		head, _, err = l.HeadCovering(req.Answer.Index)
		selectBelow = req.Answer.Body.TreeSize
	} else {
		head, err = s.AnswerHead(ctx, req.Pseudonyms)
	}
	if err != nil {
		return nil, nil, err
	}
	size := head.Size
	if selectBelow == 0 {
		selectBelow = size
	}
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
		if !verifier.ValidWithholdGround(ground) {
			return nil, nil, fmt.Errorf("%w: leaf %d: withholding ground %q is not %s or %s", ErrBundleRequest, idx, ground,
				verifier.WithholdAVG23, verifier.WithholdUAVG41)
		}
	}

	b := &verifier.Bundle{
		Format:       verifier.BundleFormat,
		Origin:       l.Origin(),
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
		b.CreatedAt = l.Now().UTC().Truncate(time.Millisecond)
	}
	if req.Parties == nil {
		for _, p := range cur.Covenant.Parties {
			b.Scope.Parties = append(b.Scope.Parties, p.ID)
		}
	}
	bb := &bundleBuilder{l: l, size: size, prover: l.Prover(size)}

	covs, err := l.CovenantLeaves(ctx, size)
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

	cands, err := subjectLeaves(ctx, l, req, selectBelow, inScope, bb.prover)
	if err != nil {
		return nil, nil, err
	}
	if !bb.prover.Remote() {
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
	if err := addErased(ctx, l, bb, b, req, inScope); err != nil {
		return nil, nil, err
	}
	for idx := range req.Withheld {
		if !found[idx] {
			return nil, nil, fmt.Errorf("%w: leaf %d is not a disclosure about this child by a party in scope", ErrBundleRequest, idx)
		}
	}

	if req.Answer != nil {
		if err := bindAnswer(ctx, l, bb, b, req.Answer); err != nil {
			return nil, nil, err
		}
		if err := bindIndex(ctx, l, bb, b, req.Answer); err != nil {
			return nil, nil, err
		}
	}
	if err := addWitnessed(ctx, l, b, head); err != nil {
		return nil, nil, err
	}
	vb, err := s.checkBuiltBundle(b, head, opened)
	if err != nil {
		return nil, nil, err
	}
	data, err := verifier.MarshalBundle(b)
	if err != nil {
		return nil, nil, err
	}
	return data, vb, nil
}

// LoggedAnswer is an answer entry as logged: its leaf, its parsed body and
// its bytes.
type LoggedAnswer struct {
	Index uint64
	Body  *verifier.AnswerBody
	Raw   []byte
}

// ErrAnswerChanged means a logged answer can no longer be proven as it was
// made: a leaf it lists is gone from the child's entries (erased since).
var ErrAnswerChanged = errors.New("ledger: the logged answer's leaves are no longer all there")

// bindAnswer makes b the v2 bundle of answer a: erased entries are kept to
// those a lists, the lists must be exactly a's, and the entry itself is
// added with its inclusion proof.
func bindAnswer(ctx context.Context, l *ledger.Ledger, bb *bundleBuilder, b *verifier.Bundle, a *LoggedAnswer) error {
	keep := map[uint64]bool{}
	for _, i := range a.Body.Erased {
		keep[i] = true
	}
	b.Erased = slices.DeleteFunc(b.Erased, func(e verifier.ErasedEntry) bool { return !keep[e.Index] })
	idx := func(n int, at func(int) uint64) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	if !slices.Equal(idx(len(b.Entries), func(i int) uint64 { return b.Entries[i].Index }), a.Body.Included) ||
		!slices.Equal(idx(len(b.Withheld), func(i int) uint64 { return b.Withheld[i].Index }), idx(len(a.Body.Withheld), func(i int) uint64 { return a.Body.Withheld[i].Index })) ||
		!slices.Equal(idx(len(b.Erased), func(i int) uint64 { return b.Erased[i].Index }), a.Body.Erased) {
		return fmt.Errorf("answer entry %d: %w", a.Index, ErrAnswerChanged)
	}
	rec, err := l.LeafRecordBytes(ctx, a.Index)
	if err != nil {
		return fmt.Errorf("answer entry %d: %w", a.Index, err)
	}
	proof, err := bb.proof(ctx, a.Index)
	if err != nil {
		return err
	}
	b.Format = verifier.BundleFormatV2
	b.Answer = &verifier.BundleAnswer{Index: a.Index, LeafRecord: rec, InclusionProof: proof, Body: a.Raw}
	return nil
}

// bindIndex makes b the v3 bundle of answer a when the ledger made index
// proofs for it (at the index head of the answer's own batch): the head
// with its leaf record, body and inclusion proof, and the proofs. It
// leaves b a v2 bundle, which proves no completeness, when there are none
// (the index was off) or they miss a party or key version the verifier
// requires.
func bindIndex(ctx context.Context, l *ledger.Ledger, bb *bundleBuilder, b *verifier.Bundle, a *LoggedAnswer) error {
	head, proofs, err := l.AnswerIndexProofs(ctx, a.Body.Request.ID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if head >= bb.size {
		return fmt.Errorf("index head %d of answer %d is beyond the bundle's checkpoint of size %d: %w", head, a.Index, bb.size, ledger.ErrCorrupt)
	}
	covs := make([]*events.Covenant, 0, len(b.Covenants))
	for _, e := range b.Covenants {
		sc, err := events.ParseSignedCovenant(e.Envelope)
		if err != nil {
			return fmt.Errorf("covenant at leaf %d: %w", e.Index, errors.Join(err, ledger.ErrCorrupt))
		}
		covs = append(covs, sc.Covenant)
	}
	parties, keys := verifier.IndexProofScope(covs, b.Scope)
	if len(proofs) != len(parties)*len(keys) {
		return nil
	}
	rec, err := l.LeafRecordBytes(ctx, head)
	if err != nil {
		return fmt.Errorf("index head %d: %w", head, err)
	}
	body, err := l.Entry(ctx, head)
	if err != nil {
		return fmt.Errorf("index head %d: %w", head, err)
	}
	proof, err := bb.proof(ctx, head)
	if err != nil {
		return err
	}
	b.Format = verifier.BundleFormatV3
	b.Index = &verifier.BundleIndex{Head: verifier.BundleIndexHead{Index: head, LeafRecord: rec, InclusionProof: proof, Body: body},
		Proofs: proofs}
	return nil
}

// addWitnessed adds, under a witness policy, for every entry of b the first
// witnessed checkpoint that includes it (de-duplicated, by size), each with
// its consistency proof to head: the witnesses' times bound when each entry
// was logged. Without a policy b is left as it was.
func addWitnessed(ctx context.Context, l *ledger.Ledger, b *verifier.Bundle, head *ledger.Head) error {
	if p, perr := l.WitnessPolicy(); p == nil && perr == nil {
		return nil
	}
	var indices []uint64
	for _, e := range b.Entries {
		indices = append(indices, e.Index)
	}
	for _, e := range b.Withheld {
		indices = append(indices, e.Index)
	}
	for _, e := range b.Erased {
		indices = append(indices, e.Index)
	}
	slices.Sort(indices)
	var last uint64 // the size of the last one added
	for _, idx := range indices {
		if idx < last {
			continue // the one added last includes it
		}
		w, err := l.FirstWitnessedCovering(ctx, idx)
		if errors.Is(err, ledger.ErrNotFound) {
			continue // before the policy: the bundle's own checkpoint bounds it
		}
		if err != nil {
			return err
		}
		if w.Size > head.Size || (w.Size == head.Size && w.Seq >= head.Seq) {
			continue // the bundle's own checkpoint is the first
		}
		wc := verifier.WitnessedCheckpoint{Checkpoint: string(w.Note), ConsistencyProof: []verifier.Base64Bytes{}}
		if w.Size < head.Size {
			proof, err := l.ConsistencyProof(ctx, w.Size, head.Size)
			if err != nil {
				return fmt.Errorf("consistency proof %d -> %d: %w", w.Size, head.Size, err)
			}
			for _, h := range proof {
				wc.ConsistencyProof = append(wc.ConsistencyProof, h)
			}
		}
		b.Witnessed = append(b.Witnessed, wc)
		last = w.Size
	}
	return nil
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
// with prover). Disclosures whose envelope was erased are skipped.
// AnswerHead returns the head an answer about the child with these
// pseudonyms is built on. Without a witness policy it is the signed head.
// With one it is the witnessed head, when that covers every entry about
// the child; when it does not, ledger.ErrNotWitnessed (retry once the
// witnesses have cosigned a newer checkpoint), also on a ledger running
// fail-open (whose fail-open mode is for /checkpoint and receipts only).
func (s *Service) AnswerHead(ctx context.Context, pseudonyms []verifier.SubjectPseudonym) (*ledger.Head, error) {
	l := s.l
	h := l.Head()
	if h == nil {
		return nil, errors.New("ledger: the log has no checkpoint yet")
	}
	if p, perr := l.WitnessPolicy(); p == nil && perr == nil {
		return h, nil
	}
	if w := l.WitnessedHead(); w != nil {
		covered := true
		for _, p := range pseudonyms {
			idxs, err := l.BySubject(ctx, p.Pseudonym)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrBundleRequest, err)
			}
			for _, idx := range idxs {
				if idx >= w.Size && idx < h.Size {
					covered = false
				}
			}
		}
		if covered {
			return w, nil
		}
	}
	// Even fail-open: a bundle whose checkpoint misses the covenant's
	// quorum is refused by every verifier, so it is not handed out.
	return nil, fmt.Errorf("answer: %w", ledger.ErrNotWitnessed)
}

func subjectLeaves(ctx context.Context, l *ledger.Ledger, req BundleRequest, size uint64, inScope map[string]bool, prover *ledger.Prover) ([]openedEntry, error) {
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
	if prover.Remote() {
		prover = nil // the backend's proofs are prefetched apart
	}
	reads := readSubjectEntries(ctx, l, unique, prover)

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
			return nil, fmt.Errorf("entry %d is not about the pseudonym its subject index names: %w", idx, ledger.ErrCorrupt)
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
// most of an inzage answer's time. With a prover (no Merkle backend) it also
// builds each leaf's inclusion proof in the prover's tree, so that
// the proofs' tile reads and hashing (in a large log each disclosure of a
// child lies in a full tile of its own, whose 254 inner nodes the first
// use hashes) run beside the entries' reads. The i-th result is for
// idxs[i].
func readSubjectEntries(ctx context.Context, l *ledger.Ledger, idxs []uint64, prover *ledger.Prover) []subjectRead {
	out := make([]subjectRead, len(idxs))
	read := func(i int) {
		r := &out[i]
		idx := idxs[i]
		r.index = idx
		body, err := l.Entry(ctx, idx)
		if errors.Is(err, ledger.ErrNotFound) {
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
			r.err = fmt.Errorf("entry %d: %w", idx, errors.Join(err, ledger.ErrCorrupt))
			return
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			r.err = fmt.Errorf("entry %d: %w", idx, errors.Join(err, ledger.ErrCorrupt))
			return
		}
		if prover != nil {
			if r.proof, err = prover.Proof(ctx, idx); err != nil {
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
	l      *ledger.Ledger
	size   uint64
	prover *ledger.Prover
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
			proofs[i], errs[i] = bb.prover.Proof(ctx, idx)
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

// proof returns the inclusion proof of leaf idx: prefetched, or from the
// bundle's prover (the Merkle backend's, or built from the ledger's own
// tiles with the node hashes the bundle's proofs share).
func (bb *bundleBuilder) proof(ctx context.Context, idx uint64) ([]verifier.Base64Bytes, error) {
	var p [][]byte
	var err error
	if pre, ok := bb.fetched[idx]; ok {
		p = pre
	} else {
		p, err = bb.prover.Proof(ctx, idx)
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
func addErased(ctx context.Context, l *ledger.Ledger, bb *bundleBuilder, b *verifier.Bundle, req BundleRequest, inScope map[string]bool) error {
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
				return fmt.Errorf("leaf record %d: %w", n.TombstoneIndex, errors.Join(err, ledger.ErrCorrupt))
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

// checkBuiltBundle checks a bundle the ledger has just built with
// verifier.VerifyParsedBundle, the parent's verifier itself, and returns it
// as verified: against the ledger's keys and the administrator key it pins
// (without one, the key covenant version 1 names, as a parent would pin it
// from the covenant's own file), with the service's cache of the head's
// checkpoint and the covenant chain, and with the disclosures as
// subjectLeaves read them (opened, in the bundle's order), whose signatures
// it does not compute again (see the file comment). The checkpoint must
// also be the head's. A malformed request (id, relation, times), which the
// structural check refuses for the parent too, wraps ErrBundleRequest;
// every other failure wraps ErrCorrupt.
func (s *Service) checkBuiltBundle(b *verifier.Bundle, head *ledger.Head, opened []openedEntry) (*verifier.VerifiedBundle, error) {
	admin := s.l.AdminVkey()
	if strings.TrimSpace(admin) == "" {
		if v := s.l.ChainView(); v != nil {
			admin = v.First.Covenant.Administrator.Key
		}
	}
	ingested := make([]verifier.IngestedEnvelope, len(opened))
	for i, o := range opened {
		ingested[i] = verifier.IngestedEnvelope{Index: o.index, Envelope: o.env, Disclosure: o.d}
	}
	vb, err := verifier.VerifyParsedBundle(b, s.l.Keys(), admin,
		verifier.WithCache(&s.bundleCache), verifier.SignaturesCheckedAtIngest(ingested))
	if errors.Is(err, verifier.ErrBundleMalformed) {
		return nil, fmt.Errorf("%w: %w", ErrBundleRequest, err)
	}
	if err == nil && (vb.Checkpoint.Size != head.Size || vb.Checkpoint.Hash != head.Root) {
		err = fmt.Errorf("%w: the head's checkpoint does not state the head's size and root", verifier.ErrCheckpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("the bundle built from the store does not verify: %w", errors.Join(err, ledger.ErrCorrupt))
	}
	return vb, nil
}
