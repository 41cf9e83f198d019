package answer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
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
}

// Withhold names a disclosure withheld from an answer and the legal ground.
type Withhold struct {
	Index  uint64 `json:"index"`
	Ground string `json:"ground"`
}

// Errors of the access workflow that callers branch on.
var (
	ErrAccessInvalid    = errors.New("ledger: invalid access request")
	ErrAccessSamePerson = errors.New("ledger: an access request must be released by a second desk user")
	ErrAccessReleased   = errors.New("ledger: access request already released")
)

// Access request statuses.
const (
	AccessRegistered = "registered"
	AccessReleased   = "released"
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

// ReleaseAccess marks a registered request of scope released by a second
// desk user and returns it; the caller then builds the bundle.
func (s *Service) ReleaseAccess(ctx context.Context, scope verifier.BundleScope, id string, by DeskUser, withheld []Withhold) (*AccessRequest, error) {
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
	for _, w := range withheld {
		if !verifier.ValidWithholdGround(w.Ground) {
			return nil, fmt.Errorf("%w: unknown withholding ground %q (avg-23 or uavg-41)", ErrAccessInvalid, w.Ground)
		}
	}
	// Released only when it can be answered: with a witness policy, on a
	// witnessed checkpoint that covers every entry about the child. The
	// request stays registered otherwise, for a retry.
	if _, err := s.AnswerHead(ctx, r.Pseudonyms); err != nil {
		return nil, err
	}
	now := s.l.Now().UTC().Truncate(time.Second)
	r.Status, r.ReleasedBy, r.ReleasedByCredential, r.ReleasedAt, r.Withheld = AccessReleased, by.Name, by.Credential, &now, withheld
	if err := s.putAccess(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// AccessBundle builds the answer to a released access request: the bundle
// of every disclosure about the child in the request's scope, with proofs
// against the current checkpoint.
func (s *Service) AccessBundle(ctx context.Context, r *AccessRequest) ([]byte, error) {
	if r.Status != AccessReleased || r.ReleasedAt == nil {
		return nil, fmt.Errorf("%w: request %s is not released", ErrAccessInvalid, r.ID)
	}
	withheld := map[uint64]string{}
	for _, w := range r.Withheld {
		withheld[w.Index] = w.Ground
	}
	var parties []string
	if !r.Scope.CentralDesk {
		parties = r.Scope.Parties
	}
	b, _, err := s.BuildBundle(ctx, BundleRequest{
		IDType: r.IDType, Pseudonyms: r.Pseudonyms, Parties: parties, Withheld: withheld,
		Request: verifier.InzageRequest{ID: r.ID, Relation: r.Relation, RequestedAt: r.RequestedAt, ReleasedAt: *r.ReleasedAt},
		LogVkey: s.cfg.LogVkey, CosignerVkey: s.cfg.CosignerVkey,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't build the bundle of request %s: %w", r.ID, err)
	}
	return b, nil
}
