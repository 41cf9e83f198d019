package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// The LDV index: what the read API of Logboek Dataverwerkingen
// (docs/ldv.md, ledger/httpapi's POST /processing-activities) looks
// disclosures up by, besides the subject index ('s'):
//
//	'L' 0x01 trace id(16) index(8)                  -> ""  by W3C trace id
//	'L' 0x02 SHA-256(processing activity)[:16] index(8) -> ""  by processing activity
//
// The sequencer writes both keys of every new disclosure in its batch
// (sealBatch, beside addIndices), and erasure deletes them with the
// envelope. Trace ids and a hash of the register's URI are not personal
// data, but an erased disclosure leaves nothing to find. Disclosures
// logged before this index existed are not in it.
const tagLDV = 'L'

// The kinds of LDV index key.
const (
	ldvByTrace    = 0x01
	ldvByActivity = 0x02
)

// ldvKeyLen is the length of an LDV index key.
const ldvKeyLen = 1 + 1 + 16 + 8

// activityHash is the 16 bytes an activity is indexed under.
func activityHash(activity string) []byte {
	h := sha256.Sum256([]byte(activity))
	return h[:16]
}

// appendLDVIndex adds the LDV index entries of disclosure d at leaf idx
// to b, their keys appended to the batch's key buffer, which it returns.
// A disclosure whose trace id does not decode (validation forbids it)
// gets no trace key.
func appendLDVIndex(b *Batch, keys []byte, idx uint64, d *events.Disclosure) []byte {
	if d == nil {
		return keys
	}
	var tid [16]byte
	if n, err := hex.Decode(tid[:], []byte(d.TraceID)); err == nil && n == 16 {
		keys = append(append(keys, tagLDV, ldvByTrace), tid[:]...)
		keys = binary.BigEndian.AppendUint64(keys, idx)
		b.Set(lastKey(keys, ldvKeyLen), nil)
	}
	keys = append(append(keys, tagLDV, ldvByActivity), activityHash(d.ProcessingActivity)...)
	keys = binary.BigEndian.AppendUint64(keys, idx)
	b.Set(lastKey(keys, ldvKeyLen), nil)
	return keys
}

// deleteLDVIndex deletes the LDV index entries of disclosure d at leaf idx
// (erasure).
func deleteLDVIndex(b *Batch, d *events.Disclosure, idx uint64) {
	var tid [16]byte
	if n, err := hex.Decode(tid[:], []byte(d.TraceID)); err == nil && n == 16 {
		b.Delete(ldvKey(ldvByTrace, tid[:], idx))
	}
	b.Delete(ldvKey(ldvByActivity, activityHash(d.ProcessingActivity), idx))
}

func ldvKey(kind byte, id []byte, idx uint64) []byte {
	k := append([]byte{tagLDV, kind}, id...)
	return binary.BigEndian.AppendUint64(k, idx)
}

// DefaultLDVLimit and MaxLDVLimit bound a page of the LDV read API.
const (
	DefaultLDVLimit = 100
	MaxLDVLimit     = 1000
)

// ErrNoLDVFilter is a query of the LDV read API without any of the
// identifying filters (trace, processing activity, subject): LDV's read
// extension requires one, so that nobody reads the whole log that way.
var ErrNoLDVFilter = errors.New("ledger: give a trace id, a processing activity or a data subject")

// LDVQuery selects disclosures for the LDV read API. At least one of
// TraceID, ProcessingActivity and Pseudonym is required; every filter
// given must match.
type LDVQuery struct {
	// TraceID is 32 lower-case hex characters (W3C Trace Context).
	TraceID string
	// ProcessingActivity is the disclosure's processing_activity, exactly.
	ProcessingActivity string
	// Pseudonym is the subject's pseudonym, 64 lower-case hex characters.
	Pseudonym string
	// From and To bound occurred_at (inclusive); zero means unbounded.
	From, To time.Time
	// Disclosers limits the answer to these parties' disclosures (a desk
	// user's scope); nil means every party's (the FG).
	Disclosers []string
	// Start is the smallest leaf index to answer (the cursor of a page).
	Start uint64
	// Limit is the most disclosures answered; 0 means DefaultLDVLimit,
	// and it is capped at MaxLDVLimit.
	Limit int
}

// LDVRecord is one disclosure the LDV read API answers: where it is in the
// log, the hash of its envelope, and the disclosure.
type LDVRecord struct {
	Index          uint64
	EnvelopeSHA256 [32]byte
	Disclosure     *events.Disclosure
}

// ProcessingActivities answers an LDV read query: the matching committed,
// not erased disclosures in log order from q.Start, at most q.Limit, and
// when more match the leaf index to start the next page at (next, with
// more true).
func (l *Ledger) ProcessingActivities(ctx context.Context, q LDVQuery) (recs []LDVRecord, next uint64, more bool, err error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLDVLimit
	}
	limit = min(limit, MaxLDVLimit)
	var candidates func(yield func(uint64) error) error
	switch {
	case q.TraceID != "":
		tid, err := hex.DecodeString(q.TraceID)
		if err != nil || len(tid) != 16 {
			return nil, 0, false, errors.New("ledger: a trace id is 32 hex characters")
		}
		candidates = l.scanLDV(ctx, ldvByTrace, tid, q.Start)
	case q.Pseudonym != "":
		idxs, err := l.BySubject(ctx, q.Pseudonym)
		if err != nil {
			return nil, 0, false, err
		}
		candidates = func(yield func(uint64) error) error {
			for _, idx := range idxs {
				if idx < q.Start {
					continue
				}
				if err := yield(idx); err != nil {
					return err
				}
			}
			return nil
		}
	case q.ProcessingActivity != "":
		candidates = l.scanLDV(ctx, ldvByActivity, activityHash(q.ProcessingActivity), q.Start)
	default:
		return nil, 0, false, ErrNoLDVFilter
	}
	errDone := errors.New("page full")
	err = candidates(func(idx uint64) error {
		if !l.logged(idx) {
			return nil
		}
		env, err := l.Entry(ctx, idx)
		if errors.Is(err, ErrNotFound) {
			return nil // erased
		}
		if err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
		e, err := events.ParseEnvelope(env)
		if err != nil {
			return fmt.Errorf("stored envelope %d: %w", idx, err)
		}
		d, err := events.DecodeDisclosure(e.Payload)
		if err != nil {
			// Not a disclosure (a covenant or tombstone has no LDV keys).
			return nil
		}
		if !q.matches(d) {
			return nil
		}
		if len(recs) == limit {
			next, more = idx, true
			return errDone
		}
		recs = append(recs, LDVRecord{Index: idx, EnvelopeSHA256: sha256.Sum256(env), Disclosure: d})
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, 0, false, err
	}
	return recs, next, more, nil
}

// matches says whether d passes every filter of q.
func (q *LDVQuery) matches(d *events.Disclosure) bool {
	switch {
	case q.TraceID != "" && d.TraceID != q.TraceID,
		q.ProcessingActivity != "" && d.ProcessingActivity != q.ProcessingActivity,
		q.Pseudonym != "" && d.Subject.Pseudonym != q.Pseudonym,
		!q.From.IsZero() && d.OccurredAt.Before(q.From),
		!q.To.IsZero() && d.OccurredAt.After(q.To),
		q.Disclosers != nil && !slices.Contains(q.Disclosers, d.Discloser):
		return false
	}
	return true
}

// scanLDV visits the leaf indices under one LDV index id from start on,
// in log order.
func (l *Ledger) scanLDV(ctx context.Context, kind byte, id []byte, start uint64) func(yield func(uint64) error) error {
	return func(yield func(uint64) error) error {
		prefix := append([]byte{tagLDV, kind}, id...)
		return l.store.Scan(ctx, ldvKey(kind, id, start), prefixEnd(prefix), func(k, _ []byte) error {
			if len(k) != ldvKeyLen {
				return nil
			}
			return yield(binary.BigEndian.Uint64(k[len(prefix):]))
		})
	}
}
