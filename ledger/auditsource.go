package ledger

// This file lets the FG's audit (audit.Run) read a log straight from
// its store: every kept checkpoint, every leaf record with its stored body
// and findings, and the level-0 tiles. It only reads.
//
// Two sources, because what a leaf record beyond the newest checkpoint
// means depends on whether anything is writing:
//   - StoreAuditSource is for a store nothing writes to (a stopped ledger's
//     folder, a backup): there such a record is a fault, and the source lets
//     the audit look for one (audit.TailSource).
//   - Ledger.AuditSource is for a running ledger, where the sequencer may
//     commit a batch while the audit reads; the audit then covers the log up
//     to the newest checkpoint it read first.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// UnreadableFindingsRule is the rule id of the finding an audit source
// puts in place of a stored findings record it cannot decode, so that the
// audit reports the leaf (its findings then differ from the rules').
const UnreadableFindingsRule = "unreadable-findings-record"

// auditReader reads a Store for audit.Run. Envelopes sealed at rest
// are opened with keys; a nil keys opens only plain bodies.
type auditReader struct {
	store Store
	keys  *DataKeys
}

// body returns the readable form of a stored body, or why there is none:
// an envelope whose data key was destroyed (crypto-erased) counts as not
// stored, and one that does not decrypt is returned as stored, with the
// reason, so that the audit names its leaf.
func (r auditReader) body(idx uint64, stored []byte) (body []byte, why string) {
	if len(stored) == 0 || stored[0] != sealedPrefix {
		return stored, ""
	}
	if r.keys == nil {
		return stored, "the envelope is sealed at rest and no data key folder was given"
	}
	plain, err := r.keys.open(idx, stored)
	switch {
	case err == nil:
		return plain, ""
	case errors.Is(err, ErrKeyDestroyed):
		return nil, ""
	}
	return stored, "the envelope is sealed at rest and does not open with its data key (" + err.Error() +
		"): it was altered after it was logged, or the data key folder is not this ledger's"
}

// ErasureProposals implements audit.ErasureSource: every erasure
// proposal kept beside the log, oldest first.
func (r auditReader) ErasureProposals(ctx context.Context) ([]verifier.ErasureProposal, error) {
	ps, err := scanProposals(ctx, r.store, nil)
	if err != nil {
		return nil, err
	}
	out := make([]verifier.ErasureProposal, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out, nil
}

// Checkpoints implements audit.Source: every kept checkpoint,
// oldest first.
func (r auditReader) Checkpoints(ctx context.Context) ([]audit.StoredCheckpoint, error) {
	var out []audit.StoredCheckpoint
	err := r.store.Scan(ctx, []byte{tagCheckpoint}, []byte{tagCheckpoint + 1}, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("checkpoint key of %d bytes: %w", len(k), ErrCorrupt)
		}
		out = append(out, audit.StoredCheckpoint{Seq: binary.BigEndian.Uint64(k[1:]), Note: append([]byte(nil), v...)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't list checkpoints: %w", err)
	}
	return out, nil
}

// WitnessedCheckpoints implements audit.WitnessSource: every stored
// witnessed checkpoint (the log's checkpoint with the cosignature lines of
// the witnesses that met the policy, PutWitnessed), oldest first, each
// under the number of the checkpoint it cosigns.
func (r auditReader) WitnessedCheckpoints(ctx context.Context) ([]audit.StoredCheckpoint, error) {
	out, _, err := checkpointPage(ctx, r.store, tagWitnessed, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("couldn't list the witnessed checkpoints: %w", err)
	}
	return out, nil
}

// auditChunk is how many leaves Entries reads per round of scans.
const auditChunk = 4096

// Entries implements audit.Source: the stored leaf records in
// [from, to), each with its body (nil once erased) and findings.
//
// It reads in chunks of leaves, each with three range scans (leaf records,
// bodies, findings: all keyed by leaf index, so each scan is sequential)
// instead of two point reads per leaf; a chunk's values are copied into one
// buffer per scan.
func (r auditReader) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	bodyHint := 0 // the previous chunk's body bytes: the next one's are alike
	for lo := from; lo < to; {
		hi := min(to, lo+auditChunk)
		if hi < lo { // overflow at the top of the index space
			hi = to
		}
		entries, err := r.chunk(ctx, lo, hi, &bodyHint)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		lo = hi
	}
	return nil
}

// chunk reads the stored entries with indices in [lo, hi).
func (r auditReader) chunk(ctx context.Context, lo, hi uint64, bodyHint *int) ([]*audit.Entry, error) {
	var entries []*audit.Entry
	byIndex := make(map[uint64]*audit.Entry)
	var recBuf []byte
	err := r.store.Scan(ctx, u64Key(tagLeaf, lo), u64Key(tagLeaf, hi), func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("leaf record key of %d bytes: %w", len(k), ErrCorrupt)
		}
		idx := binary.BigEndian.Uint64(k[1:])
		start := len(recBuf)
		recBuf = append(recBuf, v...)
		e := &audit.Entry{Index: idx, LeafRecord: recBuf[start:len(recBuf):len(recBuf)]}
		entries = append(entries, e)
		byIndex[idx] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The buffer may have moved while it grew: point the records at its
	// final place.
	off := 0
	for _, e := range entries {
		n := len(e.LeafRecord)
		e.LeafRecord = recBuf[off : off+n : off+n]
		off += n
	}
	if len(entries) == 0 {
		return nil, nil
	}
	bodyBuf := make([]byte, 0, *bodyHint+*bodyHint/8)
	type span struct {
		e          *audit.Entry
		start, end int
	}
	var bodies []span
	err = r.store.Scan(ctx, u64Key(tagEntry, lo), u64Key(tagEntry, hi), func(k, v []byte) error {
		if len(k) != 9 {
			return nil // not an entry body key; the leaf records decide what is audited
		}
		e := byIndex[binary.BigEndian.Uint64(k[1:])]
		if e == nil {
			return nil // a body without a leaf record: the missing leaf is reported
		}
		start := len(bodyBuf)
		bodyBuf = append(bodyBuf, v...)
		bodies = append(bodies, span{e, start, len(bodyBuf)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries %d to %d: %w", lo, hi-1, err)
	}
	*bodyHint = len(bodyBuf)
	for _, b := range bodies {
		stored := bodyBuf[b.start:b.end:b.end]
		if len(stored) == 0 {
			stored = []byte{} // stored, but empty: not the same as erased
		}
		b.e.Body, b.e.BodyError = r.body(b.e.Index, stored)
	}
	err = r.store.Scan(ctx, u64Key(tagFindings, lo), u64Key(tagFindings, hi), func(k, v []byte) error {
		if len(k) != 9 {
			return nil
		}
		e := byIndex[binary.BigEndian.Uint64(k[1:])]
		if e == nil {
			return nil
		}
		if jerr := json.Unmarshal(v, &e.Findings); jerr != nil {
			e.Findings = []events.Finding{{Rule: UnreadableFindingsRule}}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the findings of entries %d to %d: %w", lo, hi-1, err)
	}
	return entries, nil
}

// LeafTile implements audit.TileSource: level-0 tile n as stored.
func (r auditReader) LeafTile(ctx context.Context, n uint64, width int) ([]byte, error) {
	data, err := r.store.Get(ctx, tileKey(0, n))
	if err != nil {
		return nil, fmt.Errorf("tile 0/%d: %w", n, err)
	}
	if len(data) < width*sha256.Size {
		return nil, fmt.Errorf("tile 0/%d has %d hashes, want %d: %w", n, len(data)/sha256.Size, width, ErrCorrupt)
	}
	return data, nil
}

// StoreAuditSource reads a store that nothing writes to (a stopped
// ledger's folder or a backup) for audit.Run. It implements
// audit.Source, audit.TileSource and
// audit.TailSource.
type StoreAuditSource struct{ auditReader }

// NewStoreAuditSource returns the audit source over s. keys opens the
// envelopes sealed at rest (nil if the ledger stores them in the clear);
// an envelope whose data key was destroyed reads as erased. It never
// writes.
func NewStoreAuditSource(s Store, keys *DataKeys) *StoreAuditSource {
	return &StoreAuditSource{auditReader{store: s, keys: keys}}
}

// errStopScan ends a scan early (here and in witnessed.go).
var errStopScan = errors.New("stop scan")

// LastLeafIndex implements audit.TailSource.
func (s *StoreAuditSource) LastLeafIndex(ctx context.Context) (uint64, bool, error) {
	var last uint64
	found := false
	err := s.store.ScanReverse(ctx, []byte{tagLeaf}, []byte{tagLeaf + 1}, func(k, _ []byte) error {
		if len(k) == 9 {
			last, found = binary.BigEndian.Uint64(k[1:]), true
		}
		return errStopScan
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return 0, false, fmt.Errorf("couldn't find the last leaf record: %w", err)
	}
	return last, found, nil
}

var (
	_ audit.Source        = (*StoreAuditSource)(nil)
	_ audit.TileSource    = (*StoreAuditSource)(nil)
	_ audit.TailSource    = (*StoreAuditSource)(nil)
	_ audit.ErasureSource = (*StoreAuditSource)(nil)
	_ audit.ErasureSource = (*ledgerAuditSource)(nil)
	_ audit.WitnessSource = (*StoreAuditSource)(nil)
	_ audit.WitnessSource = (*ledgerAuditSource)(nil)
)

// ledgerAuditSource is the audit source over a running ledger.
type ledgerAuditSource struct{ auditReader }

// AuditSource returns a source through which audit.Run reads the
// running ledger (the checkpoints, entries and tiles in its store). It
// also implements audit.TileSource.
func (l *Ledger) AuditSource() audit.Source {
	src := &ledgerAuditSource{auditReader{store: l.store, keys: l.cfg.DataKeys}}
	if l.sidx != nil {
		return &ledgerIndexAuditSource{src, indexReaderSource{store: l.store, vrf: l.sidx.vrf}}
	}
	return src
}

// ledgerIndexAuditSource is the running ledger's audit source with the
// subject index on: it also reads the index (audit.IndexSource).
type ledgerIndexAuditSource struct {
	*ledgerAuditSource
	indexReaderSource
}

// CheckpointPage returns up to limit kept checkpoints from number from on,
// oldest first, and the number of the next one when more follow (0 when
// none do). It serves the FG's paged reads of every checkpoint.
func (l *Ledger) CheckpointPage(ctx context.Context, from uint64, limit int) ([]audit.StoredCheckpoint, uint64, error) {
	if limit < 1 {
		return nil, 0, errors.New("ledger: CheckpointPage needs a limit of at least 1")
	}
	out, next, err := checkpointPage(ctx, l.store, tagCheckpoint, from, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't list checkpoints: %w", err)
	}
	return out, next, nil
}

// WitnessedCheckpointPage is CheckpointPage for the stored witnessed
// checkpoints: up to limit of them from checkpoint number from on, each
// under the number of the checkpoint it cosigns (numbers have gaps: only
// some checkpoints are witnessed), and the number of the next one (0 when
// none follows). It serves the FG's audit of the witness policy.
func (l *Ledger) WitnessedCheckpointPage(ctx context.Context, from uint64, limit int) ([]audit.StoredCheckpoint, uint64, error) {
	if limit < 1 {
		return nil, 0, errors.New("ledger: WitnessedCheckpointPage needs a limit of at least 1")
	}
	out, next, err := checkpointPage(ctx, l.store, tagWitnessed, from, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't list the witnessed checkpoints: %w", err)
	}
	return out, next, nil
}

// checkpointPage scans the notes stored under tag (kept or witnessed
// checkpoints, keyed by checkpoint number) from number from on: up to
// limit of them (0: all), and the number of the next one.
func checkpointPage(ctx context.Context, s Store, tag byte, from uint64, limit int) ([]audit.StoredCheckpoint, uint64, error) {
	var out []audit.StoredCheckpoint
	var next uint64
	err := s.Scan(ctx, u64Key(tag, from), []byte{tag + 1}, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("checkpoint key of %d bytes: %w", len(k), ErrCorrupt)
		}
		seq := binary.BigEndian.Uint64(k[1:])
		if limit > 0 && len(out) == limit {
			next = seq
			return errStopScan
		}
		out = append(out, audit.StoredCheckpoint{Seq: seq, Note: append([]byte(nil), v...)})
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, 0, err
	}
	return out, next, nil
}
