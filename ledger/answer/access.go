package answer

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/deskapi"
)

// AccessRequest is an inzageverzoek (AVG art. 15) as the privacy desk
// registers it: who asks (their relation to the child), about which
// pseudonyms, registered by one desk user and released by another. The
// record is kept in the store as the log of who asked for what, and when.
type AccessRequest struct {
	ID         string                      `json:"id"`
	IDType     events.IDType               `json:"id_type"`
	Pseudonyms []verifier.SubjectPseudonym `json:"pseudonyms"`
	// Relation is one of verifier.RelationParent, RelationGuardian,
	// RelationYoungPerson.
	Relation string `json:"relation"`
	// Child16OrOlder is what the desk established about the child's age:
	// from 16 the young person alone may ask, under 16 a parent with
	// parental authority or a guardian.
	Child16OrOlder bool `json:"child_16_or_older"`
	// Scope is whose disclosures the answer covers.
	Scope       verifier.BundleScope `json:"scope"`
	RequestedBy string               `json:"requested_by"`
	// RequestedByCredential is the SHA-256 (hex) of the registering desk
	// user's credential: what tells the second desk user apart from the
	// first, whatever their names. Requests stored before it was kept
	// fall back to the names.
	RequestedByCredential string     `json:"requested_by_credential,omitempty"`
	RequestedAt           time.Time  `json:"requested_at"`
	Status                string     `json:"status"` // registered | released
	ReleasedBy            string     `json:"released_by,omitempty"`
	ReleasedByCredential  string     `json:"released_by_credential,omitempty"`
	ReleasedAt            *time.Time `json:"released_at,omitempty"`
	Withheld              []Withhold `json:"withheld,omitempty"`
	// AnswerIndex is the leaf of the answer entry logged at release
	// (verifier/answerentry.go); nil for requests released before answers
	// were logged, whose bundles are v1.
	AnswerIndex *uint64 `json:"answer_index,omitempty"`
}

// Withhold names a disclosure withheld from an answer and the legal ground
// (its one definition is the API's, deskapi).
type Withhold = deskapi.Withhold

// Errors of the access workflow that callers branch on.
var (
	ErrAccessInvalid    = errors.New("ledger: invalid access request")
	ErrAccessSamePerson = errors.New("ledger: an access request must be released by a second desk user")
	ErrAccessReleased   = errors.New("ledger: access request already released")
	// ErrYoungPerson16Plus: a parent or guardian asks, and disclosures in
	// scope say the child is 16 or over; the release waits for the young
	// person's consent (Release.YoungPersonConsent). Returned wrapped in
	// a *YoungPersonError.
	// ErrAnswerErased: the answer's body (and the bundle kept for it) was
	// erased after the covenant's answer retention; it cannot be
	// downloaded again.
	ErrAnswerErased      = errors.New("ledger: the answer was erased after the covenant's answer retention period")
	ErrYoungPerson16Plus = errors.New("ledger: the child is 16 or over by the disclosures; a parent or guardian gets the answer only with the young person's consent")
)

// YoungPersonError is the refusal of a release to a parent or guardian
// when disclosures in scope have age band 16-plus: it names them, so that
// the desk knows why.
type YoungPersonError struct {
	// Leaves are the in-scope disclosures of age band 16-plus.
	Leaves []uint64
}

func (e *YoungPersonError) Error() string {
	return fmt.Sprintf("%d disclosure(s) in scope (leaves %v) say the child is 16 or over: from 16 the young person alone "+
		"exercises the right of access (AVG art. 8, UAVG art. 5); release to a parent or guardian only with the young person's "+
		"consent, recorded by the second desk user with a reference (young_person_consent)", len(e.Leaves), e.Leaves)
}

// Unwrap makes the error an ErrYoungPerson16Plus.
func (e *YoungPersonError) Unwrap() error { return ErrYoungPerson16Plus }

// Release is what the second desk user decides at release.
type Release struct {
	// Withheld are the disclosures withheld, each on a legal ground.
	Withheld []Withhold
	// YoungPersonConsent, when not empty, records that the young person
	// (16 or over) consented to the answer going to the parent or
	// guardian who asked: a reference to where the consent is kept
	// (verifier.CheckConsentReference). It is logged in the answer entry
	// and only used when disclosures in scope have age band 16-plus.
	YoungPersonConsent string
}

// Access request statuses.
const (
	AccessRegistered = deskapi.AccessRegistered
	AccessReleased   = deskapi.AccessReleased
)

// RegisterAccess validates and stores a new access request, filling in its
// id, time and status.
func (s *Service) RegisterAccess(ctx context.Context, r *AccessRequest) error {
	if err := validateAccess(r); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("couldn't make request id: %w", err)
	}
	r.ID = id.String()
	r.RequestedAt = s.l.Now().UTC().Truncate(time.Second)
	r.Status = AccessRegistered
	return s.putAccess(ctx, r)
}

func validateAccess(r *AccessRequest) error {
	switch {
	case r.IDType != events.IDTypeBSN && r.IDType != events.IDTypeOnderwijsnummer:
		return fmt.Errorf("%w: id_type must be bsn or onderwijsnummer", ErrAccessInvalid)
	case len(r.Pseudonyms) == 0 || len(r.Pseudonyms) > 16:
		return fmt.Errorf("%w: give one pseudonym per pseudonym key (1 to 16)", ErrAccessInvalid)
	case r.RequestedBy == "":
		return fmt.Errorf("%w: requested_by is required", ErrAccessInvalid)
	}
	for _, p := range r.Pseudonyms {
		if b, err := hex.DecodeString(p.Pseudonym); err != nil || len(b) != 32 || p.KeyID == "" {
			return fmt.Errorf("%w: each pseudonym is 64 hex characters with its key_id", ErrAccessInvalid)
		}
	}
	switch r.Relation {
	case verifier.RelationParent, verifier.RelationGuardian:
		if r.Child16OrOlder {
			return fmt.Errorf("%w: from 16 the young person alone may ask (AVG art. 8 / UAVG art. 5: parental authority covers children under 16)", ErrAccessInvalid)
		}
	case verifier.RelationYoungPerson:
		if !r.Child16OrOlder {
			return fmt.Errorf("%w: a child under 16 is represented by a parent with parental authority or a guardian", ErrAccessInvalid)
		}
	default:
		return fmt.Errorf("%w: relation must be parent, guardian or young-person", ErrAccessInvalid)
	}
	return nil
}

func (s *Service) putAccess(ctx context.Context, r *AccessRequest) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("couldn't encode access request: %w", err)
	}
	// Not a log entry: the request record is kept beside the log and
	// never touches the tree, but it is committed with a batch of the
	// sequencer's, so that a standby has it too: a request registered
	// before a failover is released on the new active ledger.
	if err := s.l.PutRecords(ctx, ledger.Record{Kind: ledger.RecordAccessRequest, ID: r.ID, Value: v}); err != nil {
		return fmt.Errorf("couldn't store access request: %w", err)
	}
	return nil
}

// Access returns a stored access request.
func (s *Service) Access(ctx context.Context, id string) (*AccessRequest, error) {
	v, err := s.l.Record(ctx, ledger.RecordAccessRequest, id)
	if err != nil {
		return nil, fmt.Errorf("access request: %w", err)
	}
	var r AccessRequest
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("access request %s: %w", id, errors.Join(err, ledger.ErrCorrupt))
	}
	return &r, nil
}

// AccessInScope returns a stored access request if it belongs to scope: a
// request stays with the scope that registered it (compared by identity,
// so that a later covenant version that adds or removes parties changes
// nothing); another scope's request answers ErrNotFound.
func (s *Service) AccessInScope(ctx context.Context, scope verifier.BundleScope, id string) (*AccessRequest, error) {
	r, err := s.Access(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Scope.Identity() != scope.Identity() {
		return nil, fmt.Errorf("access request: %w", ledger.ErrNotFound)
	}
	return r, nil
}

// AccessRequests returns the stored access requests of scope (compared by
// identity, as AccessInScope does), oldest first: the desk's list of its
// own requests. Another scope's requests are never in it.
func (s *Service) AccessRequests(ctx context.Context, scope verifier.BundleScope) ([]*AccessRequest, error) {
	want := scope.Identity()
	var out []*AccessRequest
	err := s.l.Records(ctx, ledger.RecordAccessRequest, func(v []byte) error {
		var r AccessRequest
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("access request: %w", errors.Join(err, ledger.ErrCorrupt))
		}
		if r.Scope.Identity() == want {
			out = append(out, &r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReleaseAccess releases a registered request of scope by a second desk
// user: it works out the answer at the head AnswerHead gives (with a
// witness policy, a witnessed checkpoint covering every entry about the
// child, else ledger.ErrNotWitnessed and the request stays registered),
// and appends the answer entry, with the request marked released in the
// same batch. AccessBundle then makes the bundle.
//
// A release to a parent or guardian when any in-scope disclosure (included
// or withheld) has age band 16-plus is refused with a *YoungPersonError
// unless rel records the young person's consent; the answer entry then
// records that decision (verifier.AnswerYoungPerson).
func (s *Service) ReleaseAccess(ctx context.Context, scope verifier.BundleScope, id string, by DeskUser, rel Release) (*AccessRequest, error) {
	withheld := rel.Withheld
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	r, err := s.AccessInScope(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Status == AccessReleased:
		return nil, ErrAccessReleased
	case !by.valid(), by.Name == r.RequestedBy && r.RequestedByCredential == "",
		r.RequestedByCredential != "" && by.Credential == r.RequestedByCredential:
		return nil, ErrAccessSamePerson
	}
	withheldMap := map[uint64]string{}
	for _, w := range withheld {
		if !verifier.ValidWithholdGround(w.Ground) {
			return nil, fmt.Errorf("%w: unknown withholding ground %q (avg-23 or uavg-41)", ErrAccessInvalid, w.Ground)
		}
		withheldMap[w.Index] = w.Ground
	}
	now := s.l.Now().UTC().Truncate(time.Second)
	// What the answer shows, worked out (and checked) as a bundle at the
	// answer's head; the bundle handed out is made again from the logged
	// entry, proven in a checkpoint that covers the entry too.
	_, draft, err := s.BuildBundle(ctx, BundleRequest{
		IDType: r.IDType, Pseudonyms: r.Pseudonyms, Parties: r.scopeParties(), Withheld: withheldMap,
		Request:   verifier.InzageRequest{ID: r.ID, Relation: r.Relation, RequestedAt: r.RequestedAt, ReleasedAt: now},
		CreatedAt: s.l.Now().UTC().Truncate(time.Millisecond),
		LogVkey:   s.cfg.LogVkey, CosignerVkey: s.cfg.CosignerVkey,
	})
	if err != nil {
		return nil, err
	}
	if rel.YoungPersonConsent != "" {
		if err := verifier.CheckConsentReference(rel.YoungPersonConsent); err != nil {
			return nil, fmt.Errorf("%w: young_person_consent: %w", ErrAccessInvalid, err)
		}
	}
	body := answerBody(draft, r, by)
	if r.Relation == verifier.RelationParent || r.Relation == verifier.RelationGuardian {
		sixteen, err := s.sixteenPlus(ctx, draft)
		if err != nil {
			return nil, err
		}
		if len(sixteen) > 0 {
			if rel.YoungPersonConsent == "" {
				return nil, &YoungPersonError{Leaves: sixteen}
			}
			body.YoungPerson = &verifier.AnswerYoungPerson{Decision: verifier.YoungPersonConsented,
				ConsentReference: rel.YoungPersonConsent, Leaves: sixteen}
		}
	}
	raw, err := verifier.MarshalAnswerBody(body)
	if err != nil {
		return nil, fmt.Errorf("answer of request %s: %w", r.ID, err)
	}
	r.Status, r.ReleasedBy, r.ReleasedByCredential, r.ReleasedAt, r.Withheld = AccessReleased, by.Name, by.Credential, &now, withheld
	_, existed, err := s.l.AppendAnswer(ctx, &ledger.AnswerRequest{RequestID: r.ID, Body: raw,
		IndexProofs: indexProofRequests(draft),
		Beside: func(idx uint64) ([]ledger.Record, error) {
			r.AnswerIndex = &idx
			v, err := json.Marshal(r)
			if err != nil {
				return nil, err
			}
			return []ledger.Record{{Kind: ledger.RecordAccessRequest, ID: r.ID, Value: v}}, nil
		}})
	if err != nil {
		return nil, fmt.Errorf("couldn't log the answer of request %s: %w", r.ID, err)
	}
	if existed {
		// Logged before (and the request with it): not released twice.
		return nil, ErrAccessReleased
	}
	// The answer is on the record and the request released; the bundle
	// is made (and kept) by AccessBundle. A crash here leaves a released
	// request whose bundle GET /v1/inzage/{id}/bundle makes after the
	// restart, from the logged entry.
	crashpoint.Hit(crashpoint.AnswerLogged)
	return r, nil
}

// indexProofRequests names the lists an answer proves complete (with the
// subject index on): every party and pseudonym key version the verifier
// requires for the draft's scope and covenant chain
// (verifier.IndexProofScope), under the child's pseudonym for that key. A
// key the request has no pseudonym for is left out: the bundle is then
// made without a completeness proof (v2), as the verifier would refuse it.
func indexProofRequests(draft *verifier.VerifiedBundle) []ledger.IndexProofRequest {
	covs := make([]*events.Covenant, len(draft.Covenants))
	for i, vc := range draft.Covenants {
		covs[i] = vc.Signed.Covenant
	}
	b := draft.Bundle
	parties, keys := verifier.IndexProofScope(covs, b.Scope)
	var out []ledger.IndexProofRequest
	for _, p := range parties {
		for _, k := range keys {
			for _, sp := range b.Subject.Pseudonyms {
				if sp.KeyID == k {
					out = append(out, ledger.IndexProofRequest{IDType: string(b.Subject.IDType), KeyID: k, Pseudonym: sp.Pseudonym, Party: p})
				}
			}
		}
	}
	return out
}

// sixteenPlus returns the in-scope disclosures of a draft answer, shown
// or withheld, whose age band is 16-plus, in increasing order. The shown
// ones are opened in the draft; the withheld ones are read and opened
// here (their envelopes are in the log, only not in the bundle).
func (s *Service) sixteenPlus(ctx context.Context, vb *verifier.VerifiedBundle) ([]uint64, error) {
	var out []uint64
	for _, d := range vb.Disclosures {
		if d.Disclosure.SubjectAgeBand == events.Age16Plus {
			out = append(out, d.Index)
		}
	}
	for _, w := range vb.Withheld {
		raw, err := s.l.Entry(ctx, w.Index)
		if err != nil {
			return nil, fmt.Errorf("withheld disclosure %d: %w", w.Index, err)
		}
		env, err := events.ParseEnvelope(raw)
		if err != nil {
			return nil, fmt.Errorf("withheld disclosure %d: %w", w.Index, errors.Join(err, ledger.ErrCorrupt))
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			return nil, fmt.Errorf("withheld disclosure %d: %w", w.Index, errors.Join(err, ledger.ErrCorrupt))
		}
		if d.SubjectAgeBand == events.Age16Plus {
			out = append(out, w.Index)
		}
	}
	slices.Sort(out)
	return out, nil
}

// scopeParties is the parties of a request's scope for BuildBundle: nil
// for a central desk (every party).
func (r *AccessRequest) scopeParties() []string {
	if r.Scope.CentralDesk {
		return nil
	}
	return r.Scope.Parties
}

// answerBody is what an answer entry says of the bundle worked out for r.
func answerBody(vb *verifier.VerifiedBundle, r *AccessRequest, by DeskUser) *verifier.AnswerBody {
	b := vb.Bundle
	a := &verifier.AnswerBody{Format: verifier.AnswerFormat, Origin: b.Origin, CreatedAt: b.CreatedAt, Request: b.Request,
		RequestedBy: verifier.DeskUserID(cmp.Or(r.RequestedByCredential, r.RequestedBy)), ReleasedBy: verifier.DeskUserID(cmp.Or(by.Credential, by.Name)),
		Scope: b.Scope, Subject: b.Subject, TreeSize: vb.Checkpoint.Size,
		Included: []uint64{}, Withheld: []verifier.AnswerWithheld{}, Erased: []uint64{}}
	for _, e := range b.Entries {
		a.Included = append(a.Included, e.Index)
	}
	for _, e := range b.Withheld {
		a.Withheld = append(a.Withheld, verifier.AnswerWithheld{Index: e.Index, Ground: e.Ground})
	}
	for _, e := range b.Erased {
		a.Erased = append(a.Erased, e.Index)
	}
	return a
}

// AnswerWait bounds how long AccessBundle waits for a checkpoint that
// covers a new answer entry (a witnessed one under a witness policy:
// usually well under a second) before it answers ledger.ErrNotWitnessed.
const AnswerWait = 10 * time.Second

// AccessBundle returns the bundle that answers a released access request.
// The first call makes it from the logged answer entry (a v2 bundle, every
// piece of its metadata proven by the entry) and keeps it; every later
// call, by either desk user, returns the very same bytes. Requests
// released before answers were logged get a v1 bundle made anew.
func (s *Service) AccessBundle(ctx context.Context, r *AccessRequest) ([]byte, error) {
	if r.Status != AccessReleased || r.ReleasedAt == nil {
		return nil, fmt.Errorf("%w: request %s is not released", ErrAccessInvalid, r.ID)
	}
	if r.AnswerIndex == nil {
		return s.legacyBundle(ctx, r)
	}
	if kept, err := s.l.Record(ctx, ledger.RecordAnswerBundle, r.ID); err == nil {
		return kept, nil
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return nil, err
	}
	idx := *r.AnswerIndex
	raw, err := s.l.Entry(ctx, idx)
	if errors.Is(err, ledger.ErrNotFound) {
		if tomb, terr := s.l.ErasedBy(ctx, idx); terr == nil {
			return nil, fmt.Errorf("%w: answer entry %d of request %s, by the tombstone at leaf %d", ErrAnswerErased, idx, r.ID, tomb)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("answer entry %d of request %s: %w", idx, r.ID, err)
	}
	body, err := verifier.ParseAnswerBody(raw)
	if err != nil {
		return nil, fmt.Errorf("answer entry %d of request %s: %w", idx, r.ID, errors.Join(err, ledger.ErrCorrupt))
	}
	if err := s.waitCovered(ctx, idx); err != nil {
		return nil, err
	}
	withheld := map[uint64]string{}
	for _, w := range body.Withheld {
		withheld[w.Index] = w.Ground
	}
	var parties []string
	if !body.Scope.CentralDesk {
		parties = body.Scope.Parties
	}
	data, _, err := s.BuildBundle(ctx, BundleRequest{
		IDType: body.Subject.IDType, Pseudonyms: body.Subject.Pseudonyms, Parties: parties, Withheld: withheld,
		Request: body.Request, CreatedAt: body.CreatedAt, LogVkey: s.cfg.LogVkey, CosignerVkey: s.cfg.CosignerVkey,
		Answer: &LoggedAnswer{Index: idx, Body: body, Raw: raw},
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't build the bundle of request %s: %w", r.ID, err)
	}
	if err := s.l.PutRecords(ctx, ledger.Record{Kind: ledger.RecordAnswerBundle, ID: r.ID, Value: data}); err != nil {
		return nil, fmt.Errorf("couldn't keep the bundle of request %s: %w", r.ID, err)
	}
	return data, nil
}

// waitCovered waits, at most AnswerWait, until a checkpoint an answer may
// be proven in (a witnessed one under a witness policy) covers leaf idx.
func (s *Service) waitCovered(ctx context.Context, idx uint64) error {
	deadline := time.NewTimer(AnswerWait)
	defer deadline.Stop()
	for {
		committed := s.l.Committed()
		_, _, err := s.l.HeadCovering(idx)
		if !errors.Is(err, ledger.ErrNotWitnessed) {
			return err
		}
		select {
		case <-committed:
		case <-deadline.C:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// legacyBundle is the v1 bundle of a request released before answers were
// logged: made anew at the current head, its metadata unproven.
func (s *Service) legacyBundle(ctx context.Context, r *AccessRequest) ([]byte, error) {
	withheld := map[uint64]string{}
	for _, w := range r.Withheld {
		withheld[w.Index] = w.Ground
	}
	b, _, err := s.BuildBundle(ctx, BundleRequest{
		IDType: r.IDType, Pseudonyms: r.Pseudonyms, Parties: r.scopeParties(), Withheld: withheld,
		Request: verifier.InzageRequest{ID: r.ID, Relation: r.Relation, RequestedAt: r.RequestedAt, ReleasedAt: *r.ReleasedAt},
		LogVkey: s.cfg.LogVkey, CosignerVkey: s.cfg.CosignerVkey,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't build the bundle of request %s: %w", r.ID, err)
	}
	return b, nil
}

// PreviewAccess works out what the answer to request id of scope would
// show if it were released now with nothing withheld: the bundle the
// release would check, as verified, for the second desk user to review
// before choosing what to withhold. Nothing is logged or kept. A released
// request has no preview (ErrAccessReleased): its bundle is the answer.
func (s *Service) PreviewAccess(ctx context.Context, scope verifier.BundleScope, id string) (*verifier.VerifiedBundle, error) {
	r, err := s.AccessInScope(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	if r.Status == AccessReleased {
		return nil, ErrAccessReleased
	}
	now := s.l.Now().UTC().Truncate(time.Second)
	_, vb, err := s.BuildBundle(ctx, BundleRequest{
		IDType: r.IDType, Pseudonyms: r.Pseudonyms, Parties: r.scopeParties(),
		Request:   verifier.InzageRequest{ID: r.ID, Relation: r.Relation, RequestedAt: r.RequestedAt, ReleasedAt: now},
		CreatedAt: now, LogVkey: s.cfg.LogVkey, CosignerVkey: s.cfg.CosignerVkey,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't preview the answer of request %s: %w", r.ID, err)
	}
	return vb, nil
}
