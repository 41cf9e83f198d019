package ledger

// This file is the ledger's narrow interface for records kept beside the
// log: the desk's access requests and erasure proposals (ledger/answer
// owns their workflows). They never touch the tree, but they are committed
// with a batch of the sequencer's, so that a standby has them too: a
// request registered before a failover is released on the new active
// ledger. The key layout stays here (keys.go), with every other key.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// RecordKind is the kind of a record kept beside the log.
type RecordKind byte

// The kinds of records kept beside the log, each under its own key prefix.
const (
	// RecordAccessRequest is an access request (JSON, answer.AccessRequest).
	RecordAccessRequest RecordKind = tagAccess
	// RecordErasureProposal is an erasure proposal (JSON,
	// verifier.ErasureProposal).
	RecordErasureProposal RecordKind = tagProposal
	// RecordAnswerBundle is the bundle handed out for an access request
	// (its bytes), kept so that it is downloaded again as the same bytes.
	RecordAnswerBundle RecordKind = tagAnswerBundle
)

// Record is one record kept beside the log: its kind, its id (a UUID, as
// event ids) and its value.
type Record struct {
	Kind  RecordKind
	ID    string
	Value []byte
}

func (r Record) set(b *Batch) { b.Set(eventIDKey(byte(r.Kind), r.ID), r.Value) }

// PutRecords commits records beside the log through the sequencer (see the
// file comment) and returns once they are durable.
func (l *Ledger) PutRecords(ctx context.Context, recs ...Record) error {
	var b Batch
	for _, r := range recs {
		r.set(&b)
	}
	return l.commitRecords(ctx, b.Ops)
}

// Record returns the value of a record kept beside the log: ErrNotFound for
// an id that is not an event id or not stored.
func (l *Ledger) Record(ctx context.Context, kind RecordKind, id string) ([]byte, error) {
	if !events.ValidEventID(id) {
		return nil, fmt.Errorf("record id: %w", ErrNotFound)
	}
	return l.store.Get(ctx, eventIDKey(byte(kind), id))
}

// Records calls fn with the value of every record of kind, in key order
// (for UUIDv7 ids: oldest first), until fn returns an error. The desk's
// list of its requests reads them here; what a record means is its
// owner's business (ledger/answer).
func (l *Ledger) Records(ctx context.Context, kind RecordKind, fn func(value []byte) error) error {
	tag := byte(kind)
	if err := l.store.Scan(ctx, []byte{tag}, []byte{tag + 1}, func(_, v []byte) error { return fn(v) }); err != nil {
		return fmt.Errorf("couldn't list records of kind %d: %w", kind, err)
	}
	return nil
}

// Now is the ledger's clock (Config.Now), for answers that depend on the
// time, such as whether a proposal has expired.
func (l *Ledger) Now() time.Time { return l.cfg.Now() }

// ErasureProposal returns a stored erasure proposal. The reading of
// proposals stays in the ledger because its audit source reads them too.
func (l *Ledger) ErasureProposal(ctx context.Context, id string) (*verifier.ErasureProposal, error) {
	v, err := l.Record(ctx, RecordErasureProposal, id)
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

// Discloser returns the party that made the disclosure at leaf index:
// ErrNotFound for a leaf beyond the head or one that is not a disclosure,
// ErrAlreadyErased for an erased one. The erasure workflow asks it to keep
// a desk to its own parties' disclosures.
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
