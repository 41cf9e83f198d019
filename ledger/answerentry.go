package ledger

// Answer entries (verifier/answerentry.go): an inzage answer appended to
// the log at release. The ledger appends one per access request, at most:
// the request id is an idempotency key (tagAnswerID), so a release that is
// repeated after a crash, or after the bundle could not yet be delivered,
// finds the entry it logged before instead of logging a second one. The
// caller's records beside it (the access request marked released) are
// committed in the same batch, so neither exists without the other.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/spoor-ledger/spoor/verifier"
)

// AnswerRequest appends an answer entry.
type AnswerRequest struct {
	// RequestID is the access request's id: one answer entry per id.
	RequestID string
	// Body is the canonical answer body (verifier.MarshalAnswerBody).
	Body []byte
	// Beside, when set, makes the records to commit in the entry's own
	// batch once its leaf index is known (not called for a duplicate).
	Beside func(answer uint64) ([]Record, error)
	// IndexProofs, with the subject index on, are the lists the answer
	// proves complete: the batch ends with an index head, and the proofs
	// of these lists at that head are kept beside the entry
	// (AnswerIndexProofs). Ignored when the index is off.
	IndexProofs []IndexProofRequest
}

// AppendAnswer appends an answer entry and returns its leaf index once it
// is durable; when the request already has one, it returns that entry's
// index and true, and commits nothing.
func (l *Ledger) AppendAnswer(ctx context.Context, a *AnswerRequest) (index uint64, existed bool, err error) {
	p, err := l.Submit(ctx, []Submission{{Answer: a}})
	if err != nil {
		return 0, false, err
	}
	outs, err := p.Wait(ctx)
	if err != nil {
		return 0, false, err
	}
	if outs[0].Err != nil {
		return 0, false, outs[0].Err
	}
	return outs[0].Index, outs[0].Duplicate, nil
}

// AnswerEntry returns the leaf index of the answer entry logged for an
// access request, or ErrNotFound.
func (l *Ledger) AnswerEntry(ctx context.Context, requestID string) (uint64, error) {
	v, err := l.store.Get(ctx, answerIDKey(requestID))
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("answer index of request %s: %w", requestID, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

func answerIDKey(requestID string) []byte {
	return append([]byte{tagAnswerID}, requestID...)
}

// answer is assign's work for one AnswerRequest.
func (l *Ledger) answer(ctx context.Context, b *Batch, a *AnswerRequest, seen map[string]uint64, w *batchWork) Outcome {
	fail := func(err error) Outcome { return Outcome{Err: err} }
	if a.RequestID == "" || len(a.RequestID) > 200 {
		return fail(errors.New("answer entry: the request id must be 1 to 200 bytes"))
	}
	if _, err := verifier.ParseAnswerBody(a.Body); err != nil {
		return fail(err)
	}
	if idx, ok := seen[a.RequestID]; ok {
		return Outcome{Index: idx, Duplicate: true}
	}
	switch idx, err := l.AnswerEntry(ctx, a.RequestID); {
	case err == nil:
		return Outcome{Index: idx, Duplicate: true}
	case !errors.Is(err, ErrNotFound):
		return fail(err)
	}
	idx := l.tree.size()
	rec := verifier.LeafRecord{Type: verifier.EntryAnswer, BodyHash: sha256.Sum256(a.Body), IntegratedAt: w.now, CovenantIndex: w.covIdx}
	if err := l.addLeaf(b, idx, &rec, a.Body); err != nil {
		return fail(err)
	}
	b.Set(answerIDKey(a.RequestID), binary.BigEndian.AppendUint64(nil, idx))
	if a.Beside != nil {
		recs, err := a.Beside(idx)
		if err != nil {
			return fail(fmt.Errorf("records beside answer %d: %w", idx, err))
		}
		for _, r := range recs {
			r.set(b)
		}
	}
	if l.sidx != nil && len(a.IndexProofs) > 0 {
		w.answerProofs = append(w.answerProofs, answerProofs{requestID: a.RequestID, reqs: a.IndexProofs})
	}
	seen[a.RequestID] = idx
	w.added++
	return Outcome{Index: idx}
}
