package verifier

// The completeness proof of a v3 bundle (issue 22, docs/subject-index.md):
// the first index head after the answer entry, with its inclusion proof in
// the bundle's checkpoint, and for every party the scope names (a central
// desk: every party any covenant version up to the checkpoint listed) and
// every pseudonym key version the covenant chain lists, one proof of what
// the subject index holds for the child: the list of that party's entries
// about the child (with its nonce), or its absence, with the VRF proof
// that the map key is the child's at that party.
//
// checkIndex requires exactly the proofs the scope names, recomputes every
// list's commitment and checks every proof against the head's root, and
// then requires every leaf in those lists below the answer's tree size to
// be shown (entries), withheld with a ground (withheld, as the answer
// says) or erased (erased, with its tombstone); and every shown or
// withheld leaf to be in a list of this child. An item the lists no longer
// hold but the bundle shows erased is accepted only if its tombstone is
// older than the covenant's erasure notice period at the head.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// BundleFormatV3 is the format of a bundle that carries its answer entry
// and the subject index proofs of its completeness (Bundle.Index).
const BundleFormatV3 = "spoor.inzage-bundle/v3"

// ErrIncomplete means a v3 bundle's completeness proof fails: a proof
// missing, extra or not verifying against the index head, a listed leaf
// neither shown, withheld nor erased, a shown or withheld leaf in none of
// the child's lists, a removal without an old enough tombstone, or an
// index head that does not follow the answer entry.
var ErrIncomplete = errors.New("verifier: the bundle does not prove it is complete")

// MaxBundleIndexProofs bounds a bundle's index proofs: every party times
// every pseudonym key version.
const MaxBundleIndexProofs = MaxBundleParties * MaxBundlePseudonyms

// BundleIndex is a v3 bundle's completeness proof.
type BundleIndex struct {
	// Head is the first index head after the answer entry.
	Head BundleIndexHead `json:"head"`
	// Proofs are one per party in scope and pseudonym key version, in
	// the order of the scope's parties and then of the subject's
	// pseudonyms.
	Proofs []BundleIndexProof `json:"proofs"`
}

// BundleIndexHead is an index head entry with its inclusion proof in the
// bundle's checkpoint and its body (IndexHeadBody's canonical bytes).
type BundleIndexHead struct {
	Index          uint64        `json:"index"`
	LeafRecord     Base64Bytes   `json:"leaf_record"`
	InclusionProof []Base64Bytes `json:"inclusion_proof"`
	Body           Base64Bytes   `json:"body"`
}

// BundleIndexProof is what the subject index holds for the child (under
// the bundle's identifier type and one pseudonym key version) at one
// party.
type BundleIndexProof struct {
	Party string `json:"party"`
	KeyID string `json:"key_id"`
	// VRFProof proves the map key of (the child's index key, Party)
	// under the head's VRF key (80 bytes).
	VRFProof Base64Bytes `json:"vrf_proof"`
	// List is the list's byte form (verifier/subjectindex), nonce
	// included; absent when the map holds nothing for the child there.
	List Base64Bytes `json:"list,omitempty"`
	// Proof is the map proof (inclusion, or absence when List is absent).
	Proof Base64Bytes `json:"proof"`
}

// Completeness is what a v3 bundle's proof established.
type Completeness struct {
	// HeadIndex is the index head's leaf; HeadAt its integrated_at.
	HeadIndex uint64
	HeadAt    time.Time
	// TreeSize is the answer's tree size: the lists are complete for
	// the log below it.
	TreeSize uint64
	// Parties are the organisations whose lists were proven; NotInScope
	// the covenant's other organisations (a party's desk answers for its
	// own only).
	Parties, NotInScope []string
	// IDType is the identifier the child was searched by; KeyIDs the
	// pseudonym key versions searched (every one the covenant chain
	// lists).
	IDType events.IDType
	KeyIDs []string
	// Later are leaves in the lists at or above TreeSize: logged after
	// the answer was made, so not in it.
	Later []uint64
	// ErasuresFrom is the head's erasures_from: erasures before it are
	// in no list (the index was built over an existing log).
	ErasuresFrom uint64
}

// IndexProofScope returns the parties and pseudonym key versions a v3
// bundle must carry an index proof for: the scope's parties, or for a
// central desk every party of any covenant version given; and every key
// version any of them lists. One home for the rule: the ledger builds the
// proofs with it, the verifier requires them with it.
func IndexProofScope(covenants []*events.Covenant, scope BundleScope) (parties, keyIDs []string) {
	if scope.CentralDesk {
		for _, c := range covenants {
			for _, p := range c.Parties {
				if !slices.Contains(parties, p.ID) {
					parties = append(parties, p.ID)
				}
			}
		}
	} else {
		parties = slices.Clone(scope.Parties)
	}
	for _, c := range covenants {
		for _, k := range c.SubjectKeys {
			if !slices.Contains(keyIDs, k) {
				keyIDs = append(keyIDs, k)
			}
		}
	}
	return parties, keyIDs
}

func (w *bundleWriter) index(x *BundleIndex) {
	w.key("index")
	w.open('{')
	w.key("head")
	w.open('{')
	w.key("index")
	w.uint(x.Head.Index)
	w.key("leaf_record")
	w.b64(x.Head.LeafRecord)
	w.key("inclusion_proof")
	w.proof(x.Head.InclusionProof)
	w.key("body")
	w.b64(x.Head.Body)
	w.close('}')
	w.key("proofs")
	if x.Proofs == nil {
		w.null()
	} else {
		w.open('[')
		for _, p := range x.Proofs {
			w.elem()
			w.open('{')
			w.key("party")
			w.str(p.Party)
			w.key("key_id")
			w.str(p.KeyID)
			w.key("vrf_proof")
			w.b64(p.VRFProof)
			if len(p.List) > 0 {
				w.key("list")
				w.b64(p.List)
			}
			w.key("proof")
			w.b64(p.Proof)
			w.close('}')
		}
		w.close(']')
	}
	w.close('}')
}

// checkIndexStructure is CheckBundle's part for the index.
func checkIndexStructure(b *Bundle) (section string, err error) {
	x := b.Index
	switch {
	case b.Format == BundleFormatV3 && (x == nil || b.Answer == nil):
		return "index", fmt.Errorf("a %s bundle carries its answer entry and its index proofs", BundleFormatV3)
	case b.Format != BundleFormatV3 && x != nil:
		return "index", fmt.Errorf("a %s bundle carries no index proofs", clip(b.Format))
	case x == nil:
		return "", nil
	}
	h := x.Head
	if len(h.LeafRecord) == 0 || len(h.LeafRecord) > MaxLeafRecordSize || len(h.Body) == 0 || len(h.Body) > MaxIndexHeadBodySize {
		return "index", fmt.Errorf("head: leaf record of %d bytes, body of %d", len(h.LeafRecord), len(h.Body))
	}
	if len(h.InclusionProof) > MaxProofLength {
		return "index", fmt.Errorf("head: inclusion proof of %d hashes (at most %d)", len(h.InclusionProof), MaxProofLength)
	}
	for j, p := range h.InclusionProof {
		if len(p) != sha256.Size {
			return "index", fmt.Errorf("head: inclusion proof element %d is %d bytes, want %d", j, len(p), sha256.Size)
		}
	}
	if len(x.Proofs) > MaxBundleIndexProofs {
		return "index", fmt.Errorf("%d index proofs, the limit is %d", len(x.Proofs), MaxBundleIndexProofs)
	}
	for i, p := range x.Proofs {
		switch {
		case !bundlePartyIDRE.MatchString(p.Party) || !bundleKeyIDRE.MatchString(p.KeyID):
			return "index", fmt.Errorf("proofs[%d]: party or key id malformed", i)
		case len(p.VRFProof) != subjectindex.VRFProofSize:
			return "index", fmt.Errorf("proofs[%d]: VRF proof of %d bytes, want %d", i, len(p.VRFProof), subjectindex.VRFProofSize)
		case len(p.Proof) == 0 || len(p.Proof) > subjectindex.MaxProofSize+64:
			return "index", fmt.Errorf("proofs[%d]: map proof of %d bytes", i, len(p.Proof))
		case len(p.List) > 37+17*subjectindex.MaxListItems:
			return "index", fmt.Errorf("proofs[%d]: list of %d bytes", i, len(p.List))
		}
	}
	return "", nil
}

// checkIndex checks a v3 bundle's completeness proof (see the file
// comment) and returns what it established, or nil after recording why
// not.
func (c *bundleCheck) checkIndex(b *Bundle, vb *VerifiedBundle, cp *Checkpoint) *Completeness {
	x, ans := b.Index, vb.Answer
	if x == nil || ans == nil || len(vb.Covenants) == 0 || len(vb.Covenants) != len(b.Covenants) {
		if x != nil {
			c.fail("index", -1, 0, false, "index", ErrIncomplete, "the completeness proof is not checked: the answer entry or the covenant chain did not verify")
		}
		return nil
	}
	incomplete := func(format string, args ...any) {
		c.fail("index", -1, 0, false, "index", ErrIncomplete, format, args...)
	}
	rec := c.leaf("index", -1, x.Head.Index, x.Head.LeafRecord, x.Head.InclusionProof, EntryIndexHead, cp)
	if rec == nil {
		return nil
	}
	if rec.BodyHash != sha256.Sum256(x.Head.Body) {
		c.fail("index", -1, x.Head.Index, true, "body-hash", ErrLeafMismatch, "the leaf record's body hash is not SHA-256 of the index head body")
		return nil
	}
	head, err := ParseIndexHeadBody(x.Head.Body)
	if err != nil {
		c.failErr("index", -1, x.Head.Index, "index-head", ErrIncomplete, err)
		return nil
	}
	if head.Origin != b.Origin || head.TreeSize != x.Head.Index {
		incomplete("the index head is for origin %q at tree size %d, not this log's leaf %d", head.Origin, head.TreeSize, x.Head.Index)
		return nil
	}
	// The head must follow the answer entry: a head before it could
	// leave out what was logged in between, and an answer reaching back
	// before the first head proves nothing.
	if x.Head.Index <= ans.Index {
		incomplete("the index head (leaf %d) is not after the answer entry (leaf %d)", x.Head.Index, ans.Index)
		return nil
	}
	vrfKey, err := head.VRFPublicKey()
	if err != nil {
		c.failErr("index", -1, x.Head.Index, "index-head", ErrIncomplete, err)
		return nil
	}
	root := head.RootHash()

	covs := make([]*events.Covenant, len(vb.Covenants))
	for i, vc := range vb.Covenants {
		covs[i] = vc.Signed.Covenant
	}
	parties, keyIDs := IndexProofScope(covs, b.Scope)
	pseudonym := map[string]string{}
	for _, p := range b.Subject.Pseudonyms {
		pseudonym[p.KeyID] = p.Pseudonym
	}
	type pk struct{ party, key string }
	want := map[pk]bool{}
	for _, p := range parties {
		for _, k := range keyIDs {
			if _, ok := pseudonym[k]; !ok {
				incomplete("the child was not searched under pseudonym key %s, which the covenant lists", k)
				return nil
			}
			want[pk{p, k}] = true
		}
	}
	// Each proof: the map key from its VRF proof (a VRF check costs two
	// scalar multiplications: on every core), the list's commitment
	// against the head's root.
	mks := make([]subjectindex.MapKey, len(x.Proofs))
	mkErrs := make([]error, len(x.Proofs))
	parallel.For(len(x.Proofs), 0, 1, func(i int) {
		p := x.Proofs[i]
		if _, ok := pseudonym[p.KeyID]; !ok {
			mkErrs[i] = fmt.Errorf("no pseudonym of the child under key %s", p.KeyID)
			return
		}
		ik, err := subjectindex.DeriveIndexKey(string(b.Subject.IDType), p.KeyID, pseudonym[p.KeyID])
		if err != nil {
			mkErrs[i] = err
			return
		}
		mks[i], mkErrs[i] = vrfKey.MapKey(ik, p.Party, p.VRFProof)
	})
	lists := map[pk]*subjectindex.List{}
	for i, p := range x.Proofs {
		k := pk{p.Party, p.KeyID}
		if !want[k] {
			incomplete("proofs[%d]: a proof for party %s under key %s, which the scope does not name (or given twice)", i, p.Party, p.KeyID)
			return nil
		}
		delete(want, k)
		if mkErrs[i] != nil {
			incomplete("proofs[%d]: the map key of party %s under key %s does not verify: %v", i, p.Party, p.KeyID, mkErrs[i])
			return nil
		}
		mk := mks[i]
		proof, err := subjectindex.ParseProof(p.Proof)
		if err != nil {
			incomplete("proofs[%d]: %v", i, err)
			return nil
		}
		var l *subjectindex.List
		if p.List != nil {
			if l, err = subjectindex.ParseList(p.List); err != nil {
				incomplete("proofs[%d]: %v", i, err)
				return nil
			}
		}
		if err := subjectindex.VerifyList(root, mk, l, proof); err != nil {
			incomplete("proofs[%d] (party %s, key %s): %v", i, p.Party, p.KeyID, err)
			return nil
		}
		lists[k] = l
	}
	for k := range want {
		incomplete("no index proof for party %s under pseudonym key %s, which the scope names", k.party, k.key)
		return nil
	}

	// What the bundle shows, withholds and erases.
	shown := map[uint64]*VerifiedDisclosure{}
	for _, d := range vb.Disclosures {
		shown[d.Index] = d
	}
	withheld := map[uint64]bool{}
	for _, w := range vb.Withheld {
		withheld[w.Index] = true
	}
	erasedBy := map[uint64]*VerifiedErasure{}
	for _, e := range vb.Erased {
		erasedBy[e.ErasedIndex] = e
	}
	out := &Completeness{HeadIndex: x.Head.Index, HeadAt: rec.IntegratedAt, TreeSize: ans.TreeSize,
		Parties: parties, IDType: b.Subject.IDType, KeyIDs: keyIDs, ErasuresFrom: head.ErasuresFrom}
	listed := map[uint64]pk{}
	for k, l := range lists {
		if l == nil {
			continue
		}
		for _, it := range l.Items {
			listed[it.Leaf] = k
			if it.Leaf >= ans.TreeSize {
				out.Later = append(out.Later, it.Leaf)
				continue
			}
			switch {
			case it.Erased:
				e := erasedBy[it.Leaf]
				if e == nil || e.Index != it.Tombstone {
					incomplete("leaf %d of party %s is erased (tombstone %d), and the bundle does not show that tombstone", it.Leaf, k.party, it.Tombstone)
					return nil
				}
			case shown[it.Leaf] != nil:
				d := shown[it.Leaf].Disclosure
				if d.Discloser != k.party || d.Subject.KeyID != k.key {
					incomplete("leaf %d is in the list of party %s under key %s, but is a disclosure by %s under key %s", it.Leaf, k.party, k.key, d.Discloser, d.Subject.KeyID)
					return nil
				}
			case withheld[it.Leaf]:
			default:
				incomplete("leaf %d, a disclosure about the child by %s, is neither shown, withheld with a ground, nor erased", it.Leaf, k.party)
				return nil
			}
		}
	}
	// The other way: everything the bundle shows or withholds is in one
	// of the child's lists.
	for _, d := range vb.Disclosures {
		if k, ok := listed[d.Index]; !ok || k.party != d.Disclosure.Discloser {
			incomplete("leaf %d is shown, but is in none of the child's lists at the index head", d.Index)
			return nil
		}
	}
	for _, w := range vb.Withheld {
		if _, ok := listed[w.Index]; !ok {
			incomplete("leaf %d is withheld, but is in none of the child's lists at the index head (another child's entry?)", w.Index)
			return nil
		}
	}
	// An erased entry shown as erased but gone from its list was removed:
	// only once the notice period of the covenant version its tombstone
	// was checked against had ended at the head.
	for _, e := range vb.Erased {
		if _, ok := listed[e.ErasedIndex]; ok || e.ErasedIndex >= ans.TreeSize || e.Index < head.ErasuresFrom {
			// Listed; logged after the answer; or erased before the
			// index existed (erasures_from).
			continue
		}
		days := -1
		for _, vc := range vb.Covenants {
			if vc.Index == e.CovenantIndex {
				days = vc.Signed.Covenant.Retention.ErasureNoticeDays
			}
		}
		if days < 0 || e.ErasedAt.Add(time.Duration(days)*24*time.Hour).After(rec.IntegratedAt) {
			incomplete("erased leaf %d is gone from the child's lists, but its tombstone (%s) is younger than the notice period of %d days at the index head (%s)",
				e.ErasedIndex, e.ErasedAt.Format(time.RFC3339), days, rec.IntegratedAt.Format(time.RFC3339))
			return nil
		}
	}
	for _, c := range covs {
		for _, p := range c.Parties {
			if !slices.Contains(parties, p.ID) && !slices.Contains(out.NotInScope, p.ID) {
				out.NotInScope = append(out.NotInScope, p.ID)
			}
		}
	}
	slices.Sort(out.Later)
	return out
}
