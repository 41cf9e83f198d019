package answer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

// An erasure on request takes two desk users of one scope: ProposeErasure
// registers it, ConfirmErasure by a second desk user appends the tombstone
// (with the decision, in one batch), WithdrawErasure drops it. Retention's
// own tombstones stay one step (RunRetention): they follow the covenant's
// rules, not a person's decision.

// Errors of the erasure workflow that callers branch on.
var (
	// ErrErasureInvalid: the request is malformed (ground, leaf type).
	ErrErasureInvalid = errors.New("ledger: invalid erasure request")
	// ErrErasureSamePerson: the proposer cannot confirm their own proposal.
	ErrErasureSamePerson = errors.New("ledger: an erasure must be confirmed by a second desk user")
	// ErrErasureDecided: the proposal was already confirmed or withdrawn.
	ErrErasureDecided = errors.New("ledger: erasure proposal already decided")
	// ErrErasureExpired: the proposal lapsed before anyone confirmed it.
	ErrErasureExpired = errors.New("ledger: erasure proposal expired")
	// ErrErasureOpen: another proposal for the same leaf is still open.
	ErrErasureOpen = errors.New("ledger: an erasure of this disclosure is already proposed")
)

// ValidErasureGround reports whether ground is one of
// verifier.ErasureGrounds (AVG art. 17(1) a to f): the tombstone's public
// rule id is "erasure:" + ground, so nothing else may get in.
func ValidErasureGround(ground string) bool {
	return slices.Contains(verifier.ErasureGrounds(), ground)
}

// ProposeErasure registers the proposal to erase the disclosure at leaf
// index on ground, by a desk user of scope. A disclosure outside the scope
// answers ErrNotFound, as an unknown leaf does, so that a desk learns
// nothing of other parties' entries.
func (s *Service) ProposeErasure(ctx context.Context, scope verifier.BundleScope, by DeskUser, index uint64, ground string) (*verifier.ErasureProposal, error) {
	if !ValidErasureGround(ground) {
		return nil, fmt.Errorf("%w: ground must be one of avg-17-1-a to avg-17-1-f (AVG art. 17(1))", ErrErasureInvalid)
	}
	if !by.valid() {
		return nil, fmt.Errorf("%w: the desk user is not identified", ErrErasureInvalid)
	}
	s.erasureMu.Lock()
	defer s.erasureMu.Unlock()
	discloser, err := s.l.Discloser(ctx, index)
	if err != nil {
		return nil, err
	}
	if !scope.CentralDesk && !scope.Covers(discloser) {
		return nil, fmt.Errorf("leaf %d: %w", index, ledger.ErrNotFound)
	}
	now := s.l.Now().UTC().Truncate(time.Second)
	open, err := s.l.ErasureProposals(ctx, func(p *verifier.ErasureProposal) bool {
		return p.LeafIndex == index && p.EffectiveStatus(now) == verifier.ErasureProposed
	})
	if err != nil {
		return nil, err
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("%w (proposal %s)", ErrErasureOpen, open[0].ID)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("couldn't make proposal id: %w", err)
	}
	p := &verifier.ErasureProposal{ID: id.String(), LeafIndex: index, Ground: ground, Scope: scope.Identity(),
		Discloser: discloser, Status: verifier.ErasureProposed, ProposedBy: by.Name, ProposedByCredential: by.Credential,
		ProposedAt: now, ExpiresAt: now.Add(s.cfg.ErasureExpiry)}
	if err := s.putProposal(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// proposalRecord is p as a record beside the log.
func proposalRecord(p *verifier.ErasureProposal) (ledger.Record, error) {
	v, err := json.Marshal(p)
	if err != nil {
		return ledger.Record{}, fmt.Errorf("couldn't encode erasure proposal: %w", err)
	}
	return ledger.Record{Kind: ledger.RecordErasureProposal, ID: p.ID, Value: v}, nil
}

func (s *Service) putProposal(ctx context.Context, p *verifier.ErasureProposal) error {
	rec, err := proposalRecord(p)
	if err != nil {
		return err
	}
	// Beside the log, committed with a batch of the sequencer's so that a
	// standby has it too (as access requests).
	if err := s.l.PutRecords(ctx, rec); err != nil {
		return fmt.Errorf("couldn't store erasure proposal: %w", err)
	}
	return nil
}

// decidable loads proposal id for a decision by desk user by of scope,
// with the time of the decision; call it under erasureMu. A proposal of
// another scope answers ErrNotFound.
func (s *Service) decidable(ctx context.Context, scope verifier.BundleScope, by DeskUser, id string) (*verifier.ErasureProposal, time.Time, error) {
	now := s.l.Now().UTC().Truncate(time.Second)
	if !by.valid() {
		return nil, now, fmt.Errorf("%w: the desk user is not identified", ErrErasureInvalid)
	}
	p, err := s.l.ErasureProposal(ctx, id)
	if err != nil {
		return nil, now, err
	}
	if p.Scope != scope.Identity() {
		return nil, now, fmt.Errorf("erasure proposal: %w", ledger.ErrNotFound)
	}
	switch p.EffectiveStatus(now) {
	case verifier.ErasureProposed:
		return p, now, nil
	case verifier.ErasureExpired:
		return nil, now, ErrErasureExpired
	default:
		return nil, now, fmt.Errorf("%w (%s)", ErrErasureDecided, p.Status)
	}
}

// ConfirmErasure confirms proposal id by a second desk user of the same
// scope and appends the tombstone; the decision is committed in the same
// batch as the tombstone, so the store never holds one without the other.
// A disclosure erased meanwhile (by retention) answers ErrAlreadyErased and
// marks the proposal overtaken.
func (s *Service) ConfirmErasure(ctx context.Context, scope verifier.BundleScope, by DeskUser, id string) (*verifier.ErasureProposal, error) {
	s.erasureMu.Lock()
	defer s.erasureMu.Unlock()
	p, now, err := s.decidable(ctx, scope, by, id)
	if err != nil {
		return nil, err
	}
	if by.Credential == p.ProposedByCredential {
		return nil, ErrErasureSamePerson
	}
	decided := *p
	decided.Status, decided.DecidedBy, decided.DecidedByCredential, decided.DecidedAt = verifier.ErasureConfirmed, by.Name, by.Credential, &now
	// The decision goes in the tombstone's batch, with the tombstone's
	// index, which only the sequencer knows.
	beside := func(tomb uint64) ([]ledger.Record, error) {
		d := decided
		d.TombstoneIndex = &tomb
		rec, err := proposalRecord(&d)
		return []ledger.Record{rec}, err
	}
	pending, err := s.l.Submit(ctx, []ledger.Submission{{Tombstone: &ledger.TombstoneRequest{ErasedIndex: p.LeafIndex,
		RuleID: verifier.ErasureRulePrefix + p.Ground, Beside: beside}}})
	if err != nil {
		return nil, err
	}
	out, err := pending.Wait(ctx)
	if err != nil {
		return nil, err
	}
	if err := out[0].Err; err != nil {
		if errors.Is(err, ledger.ErrAlreadyErased) {
			overtaken := *p
			overtaken.Status, overtaken.DecidedAt = verifier.ErasureOvertaken, &now
			if perr := s.putProposal(ctx, &overtaken); perr != nil {
				return nil, errors.Join(err, perr)
			}
		}
		return nil, err
	}
	tomb := out[0].Index
	decided.TombstoneIndex = &tomb
	return &decided, nil
}

// WithdrawErasure withdraws proposal id; any desk user of its scope may.
func (s *Service) WithdrawErasure(ctx context.Context, scope verifier.BundleScope, by DeskUser, id string) (*verifier.ErasureProposal, error) {
	s.erasureMu.Lock()
	defer s.erasureMu.Unlock()
	p, now, err := s.decidable(ctx, scope, by, id)
	if err != nil {
		return nil, err
	}
	p.Status, p.DecidedBy, p.DecidedByCredential, p.DecidedAt = verifier.ErasureWithdrawn, by.Name, by.Credential, &now
	if err := s.putProposal(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}
