package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/events"
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

// DefaultErasureExpiry is how long a proposal waits for its confirmation
// when Config.ErasureExpiry is zero.
const DefaultErasureExpiry = 7 * 24 * time.Hour

var erasureGroundRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,50}$`)

// ValidErasureGround reports whether ground is a well-formed legal ground id
// ("avg-17-1-a"): the tombstone's rule id is "erasure:" + ground.
func ValidErasureGround(ground string) bool { return erasureGroundRE.MatchString(ground) }

// Now is the ledger's clock (Config.Now), for answers that depend on the
// time, such as whether a proposal has expired.
func (l *Ledger) Now() time.Time { return l.cfg.Now() }

func proposalKey(id string) []byte { return eventIDKey(tagProposal, id) }

// DeskUser is who acts in a desk workflow: a name for people and logs, and
// the credential's identity (the SHA-256 of the bearer token, hex), which is
// what tells two desk users apart.
type DeskUser struct {
	Name       string
	Credential string
}

func (u DeskUser) valid() bool { return u.Name != "" && u.Credential != "" }

// Discloser returns the party that made the disclosure at leaf index:
// ErrNotFound for a leaf beyond the head or one that is not a disclosure,
// ErrAlreadyErased for an erased one.
func (l *Ledger) Discloser(ctx context.Context, index uint64) (string, error) {
	if !l.logged(index) {
		return "", fmt.Errorf("leaf %d: %w", index, ErrNotFound)
	}
	rec, err := l.LeafRecord(ctx, index)
	if err != nil {
		return "", err
	}
	if rec.Type != verifier.EntryDisclosure {
		return "", fmt.Errorf("leaf %d is a %s entry, not a disclosure: %w", index, rec.Type, ErrNotFound)
	}
	env, err := l.Entry(ctx, index)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("leaf %d: %w", index, ErrAlreadyErased)
	}
	if err != nil {
		return "", err
	}
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return "", fmt.Errorf("stored envelope %d: %w", index, errors.Join(err, ErrCorrupt))
	}
	d, err := events.DecodeDisclosure(e.Payload)
	if err != nil {
		return "", fmt.Errorf("stored envelope %d: %w", index, errors.Join(err, ErrCorrupt))
	}
	return d.Discloser, nil
}

// ProposeErasure registers the proposal to erase the disclosure at leaf
// index on ground, by a desk user of scope. A disclosure outside the scope
// answers ErrNotFound, as an unknown leaf does, so that a desk learns
// nothing of other parties' entries.
func (l *Ledger) ProposeErasure(ctx context.Context, scope verifier.BundleScope, by DeskUser, index uint64, ground string) (*verifier.ErasureProposal, error) {
	if !ValidErasureGround(ground) {
		return nil, fmt.Errorf("%w: ground must be like avg-17-1-a (lower-case letters, digits, dots and dashes)", ErrErasureInvalid)
	}
	if !by.valid() {
		return nil, fmt.Errorf("%w: the desk user is not identified", ErrErasureInvalid)
	}
	l.erasureMu.Lock()
	defer l.erasureMu.Unlock()
	discloser, err := l.Discloser(ctx, index)
	if err != nil {
		return nil, err
	}
	if !scope.CentralDesk && !scope.Covers(discloser) {
		return nil, fmt.Errorf("leaf %d: %w", index, ErrNotFound)
	}
	now := l.cfg.Now().UTC().Truncate(time.Second)
	open, err := l.erasureProposals(ctx, func(p *verifier.ErasureProposal) bool {
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
		ProposedAt: now, ExpiresAt: now.Add(l.cfg.ErasureExpiry)}
	if err := l.putProposal(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ErasureProposal returns a stored proposal.
func (l *Ledger) ErasureProposal(ctx context.Context, id string) (*verifier.ErasureProposal, error) {
	if !events.ValidEventID(id) {
		return nil, fmt.Errorf("erasure proposal id: %w", ErrNotFound)
	}
	v, err := l.store.Get(ctx, proposalKey(id))
	if err != nil {
		return nil, err
	}
	return decodeProposal(id, v)
}

func decodeProposal(id string, v []byte) (*verifier.ErasureProposal, error) {
	var p verifier.ErasureProposal
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("erasure proposal %s: %w", id, errors.Join(err, ErrCorrupt))
	}
	return &p, nil
}

// ErasureProposals returns the stored proposals for which keep is true (nil
// keeps all), oldest first.
func (l *Ledger) ErasureProposals(ctx context.Context, keep func(*verifier.ErasureProposal) bool) ([]*verifier.ErasureProposal, error) {
	return l.erasureProposals(ctx, keep)
}

func (l *Ledger) erasureProposals(ctx context.Context, keep func(*verifier.ErasureProposal) bool) ([]*verifier.ErasureProposal, error) {
	return scanProposals(ctx, l.store, keep)
}

func scanProposals(ctx context.Context, s Store, keep func(*verifier.ErasureProposal) bool) ([]*verifier.ErasureProposal, error) {
	var out []*verifier.ErasureProposal
	err := s.Scan(ctx, []byte{tagProposal}, []byte{tagProposal + 1}, func(k, v []byte) error {
		p, err := decodeProposal(fmt.Sprintf("%x", k[1:]), v)
		if err != nil {
			return err
		}
		if keep == nil || keep(p) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't list erasure proposals: %w", err)
	}
	// UUIDv7 keys sort by time already; the sort only guards a store that
	// holds ids of another form.
	slices.SortStableFunc(out, func(a, b *verifier.ErasureProposal) int { return a.ProposedAt.Compare(b.ProposedAt) })
	return out, nil
}

func (l *Ledger) putProposal(ctx context.Context, p *verifier.ErasureProposal) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("couldn't encode erasure proposal: %w", err)
	}
	var b Batch
	b.Set(proposalKey(p.ID), v)
	// Beside the log, committed with a batch of the sequencer's so that a
	// standby has it too (as access requests).
	if err := l.commitRecords(ctx, b.Ops); err != nil {
		return fmt.Errorf("couldn't store erasure proposal: %w", err)
	}
	return nil
}

// decidable loads proposal id for a decision by desk user by of scope,
// with the time of the decision; call it under erasureMu. A proposal of
// another scope answers ErrNotFound.
func (l *Ledger) decidable(ctx context.Context, scope verifier.BundleScope, by DeskUser, id string) (*verifier.ErasureProposal, time.Time, error) {
	now := l.cfg.Now().UTC().Truncate(time.Second)
	if !by.valid() {
		return nil, now, fmt.Errorf("%w: the desk user is not identified", ErrErasureInvalid)
	}
	p, err := l.ErasureProposal(ctx, id)
	if err != nil {
		return nil, now, err
	}
	if p.Scope != scope.Identity() {
		return nil, now, fmt.Errorf("erasure proposal: %w", ErrNotFound)
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
func (l *Ledger) ConfirmErasure(ctx context.Context, scope verifier.BundleScope, by DeskUser, id string) (*verifier.ErasureProposal, error) {
	l.erasureMu.Lock()
	defer l.erasureMu.Unlock()
	p, now, err := l.decidable(ctx, scope, by, id)
	if err != nil {
		return nil, err
	}
	if by.Credential == p.ProposedByCredential {
		return nil, ErrErasureSamePerson
	}
	decided := *p
	decided.Status, decided.DecidedBy, decided.DecidedByCredential, decided.DecidedAt = verifier.ErasureConfirmed, by.Name, by.Credential, &now
	out, err := l.submitWait(ctx, []Submission{{Tombstone: &TombstoneRequest{ErasedIndex: p.LeafIndex,
		RuleID: verifier.ErasureRulePrefix + p.Ground, proposal: &decided}}})
	if err != nil {
		return nil, err
	}
	if err := out[0].Err; err != nil {
		if errors.Is(err, ErrAlreadyErased) {
			overtaken := *p
			overtaken.Status, overtaken.DecidedAt = verifier.ErasureOvertaken, &now
			if perr := l.putProposal(ctx, &overtaken); perr != nil {
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
func (l *Ledger) WithdrawErasure(ctx context.Context, scope verifier.BundleScope, by DeskUser, id string) (*verifier.ErasureProposal, error) {
	l.erasureMu.Lock()
	defer l.erasureMu.Unlock()
	p, now, err := l.decidable(ctx, scope, by, id)
	if err != nil {
		return nil, err
	}
	p.Status, p.DecidedBy, p.DecidedByCredential, p.DecidedAt = verifier.ErasureWithdrawn, by.Name, by.Credential, &now
	if err := l.putProposal(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}
