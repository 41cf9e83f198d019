package ledger

// The Merkle-log seam. By default (Config.Merkle nil) the ledger's own
// tiles in the Store are the log: one batch holds the leaves, their tiles
// and the signed checkpoint, committed and fsync'd at once.
//
// With a MerkleBackend (ledger/trillianlog: a Trillian PREORDERED_LOG tree)
// a second, independently computed tree must agree before anything is
// signed. The order per batch, which commit follows (see commitPending and
// commit in ledger.go):
//
//	(i)   the batch (leaf records, entries, indices, tiles, but NO new
//	      checkpoint) is committed to the Store with fsync: its leaves are
//	      now "pending", durable but not logged;
//	(ii)  MerkleBackend.Integrate(first, records) sends the very same
//	      leaf records at the ledger's own contiguous indices and returns
//	      the backend's root at exactly the new size;
//	(iii) that root is compared with the root the ledger computed itself;
//	      a mismatch (or the backend reporting a different leaf) halts the
//	      sequencer (ErrBackendMismatch) and nothing is signed;
//	(iv)  the checkpoint is signed and committed (then handed to the
//	      Replicator, if any);
//	(v)   only then is the head published and are submitters told, so
//	      ingest acks only what the backend holds.
//
// Reads never show pending leaves as logged: tiles, entry bundles and
// proofs are bounded by Head().Size, and so are the event, entry, leaf
// record and subject lookups (read.go).
//
// Recovery (Open): leaves beyond the last checkpoint are the pending tail of
// a batch that crashed between (i) and (iv). recover re-checks the tree at
// the checkpoint against the checkpoint's root (the stored tiles are
// append-only, so the tiles written for the pending size still hold the
// tree at the checkpoint's size as a prefix), then re-appends the pending
// leaf records and requires them to reproduce the stored tiles exactly.
// syncBackend then brings the backend up to the checkpoint (a fresh tree,
// or one restored from an older backup, is fed from the stored leaf
// records), refuses a backend that is ahead of the ledger, and finishes
// the pending batch through the normal commit path: Integrate again (it is
// idempotent), compare, sign, commit. Without a backend a leaf beyond the
// checkpoint is still ErrCorrupt, since a batch is committed whole.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/spoor-ledger/spoor/verifier"
)

// MerkleBackend is a second home of the log's Merkle tree, outside the
// Store, which must agree with the ledger's own tree before any checkpoint
// is signed, and which then serves the log's proofs. *trillianlog.Backend
// implements it.
//
// Only the sequencer calls Integrate, one call at a time and in index
// order; proofs may be asked for concurrently.
type MerkleBackend interface {
	// Integrate adds the leaf records leaves at indices first, first+1, ...
	// and returns the backend's root of the tree of size
	// first+len(leaves), once the backend has integrated them. It must be
	// idempotent: leaves it already holds count as done when they are the
	// same and are an error otherwise. With no leaves it returns the root
	// at size first. first must not exceed Size.
	Integrate(ctx context.Context, first uint64, leaves [][]byte) ([32]byte, error)
	// Size returns how many leaves the backend has integrated.
	Size(ctx context.Context) (uint64, error)
	// InclusionProof returns the RFC 6962 proof that leaf index is in the
	// tree of size, checked by the backend against its own root.
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	// ConsistencyProof returns the RFC 6962 proof that the tree of size
	// newSize extends the tree of size oldSize (0 < oldSize <= newSize).
	ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)
}

// Errors of the Merkle backend. Both stop the ledger: it signs nothing the
// backend does not hold exactly as the ledger does.
var (
	// ErrBackendMismatch means the backend's root differs from the
	// ledger's own root at the same size (or the backend holds a different
	// leaf at one of the ledger's indices).
	ErrBackendMismatch = errors.New("ledger: the Merkle backend's tree differs from the ledger's")
	// ErrBackendAhead means the backend holds more leaves than the ledger
	// (the ledger was restored from an older backup, or the backend's
	// tree belongs to another log): the ledger refuses to start rather
	// than re-use indices the backend has already fixed.
	ErrBackendAhead = errors.New("ledger: the Merkle backend is ahead of the ledger")
)

// catchUpChunk is how many stored leaf records Open sends to a backend
// that is behind in one Integrate call; the root is compared after each.
const catchUpChunk = 20000

// integratePending runs steps (i) to (iii) for the leaves the tree holds
// beyond the last checkpoint (indices first..size-1, records
// l.unlogged): b, which holds them with their tiles but no checkpoint, is
// committed durably, then the backend integrates them and its root must
// equal root. Sequencer only (or Open before it starts).
func (l *Ledger) integratePending(ctx context.Context, b *Batch, first, size uint64, root [32]byte) error {
	if uint64(len(l.unlogged)) != size-first {
		return fmt.Errorf("ledger: %d leaf records are pending but the tree grew from %d to %d: %w", len(l.unlogged), first, size, ErrCorrupt)
	}
	// (i) Pending: durable, so that a crash re-sends these very records.
	if b.Len() > 0 {
		start := time.Now()
		if err := l.store.Commit(ctx, b); err != nil {
			return fmt.Errorf("couldn't commit pending leaves %d..%d (fatal, the ledger stops): %w", first, size-1, err)
		}
		l.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	}
	// (ii) The backend integrates them at the ledger's indices.
	got, err := l.cfg.Merkle.Integrate(ctx, first, l.unlogged)
	if err != nil {
		return fmt.Errorf("the Merkle backend couldn't integrate leaves %d..%d (the ledger stops; they stay pending and are re-sent on restart): %w", first, size-1, err)
	}
	// (iii) Both trees must be the same before anything is signed.
	if got != root {
		return fmt.Errorf("at tree size %d the Merkle backend's root is %x but the ledger's is %x (the ledger stops and signs nothing): %w",
			size, got[:8], root[:8], ErrBackendMismatch)
	}
	l.unlogged = nil
	return nil
}

// recoverPending reads the leaf records stored beyond the checkpoint size
// from (the pending tail of a batch that crashed before its checkpoint),
// appends them to t and requires the stored tiles to be exactly what they
// give. Their records are kept in l.unlogged for syncBackend.
func (l *Ledger) recoverPending(ctx context.Context, t *tree, from uint64) error {
	next := from
	var recs [][]byte
	err := l.store.Scan(ctx, u64Key(tagLeaf, from), []byte{tagLeaf + 1}, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("leaf record key of %d bytes: %w", len(k), ErrCorrupt)
		}
		if idx := binary.BigEndian.Uint64(k[1:]); idx != next {
			return fmt.Errorf("pending leaf records jump from %d to %d: %w", next, idx, ErrCorrupt)
		}
		recs = append(recs, append([]byte(nil), v...))
		next++
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't read the pending leaf records: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	for _, rec := range recs {
		h := verifier.LeafHash(rec)
		if err := t.append(h[:]); err != nil {
			return err
		}
	}
	// The pending batch wrote the tiles for its new size; appending its
	// records to the checkpoint's tree must give the very same tiles.
	var tileErr error
	t.takeDirty(func(level int, index uint64, data []byte) {
		if tileErr != nil {
			return
		}
		stored, err := l.store.Get(ctx, tileKey(level, index))
		switch {
		case err != nil:
			tileErr = fmt.Errorf("tile %d/%d of the pending leaves: %w", level, index, errors.Join(err, ErrCorrupt))
		case string(stored) != string(data):
			tileErr = fmt.Errorf("stored tile %d/%d differs from what the pending leaf records give: %w", level, index, ErrCorrupt)
		}
	})
	if tileErr != nil {
		return tileErr
	}
	l.unlogged = recs
	l.log.Warn("found leaves beyond the last checkpoint: a batch crashed before its checkpoint; it is finished before the log serves",
		"checkpoint_size", from, "pending_leaves", len(recs))
	return nil
}

// syncBackend makes the backend hold exactly the ledger's tree before the
// sequencer starts: it refuses a backend that is ahead, feeds one that is
// behind from the stored leaf records (a fresh tree, or one restored from
// an older backup), compares the roots, and finishes a pending batch with
// a signed checkpoint. Open only.
func (l *Ledger) syncBackend(ctx context.Context) error {
	if l.cfg.Merkle == nil {
		return nil
	}
	if l.cfg.Replicator != nil {
		// A standby applies batches without a backend, and a batch
		// finished here at recovery would reach the stream without its
		// leaves: not supported yet.
		return errors.New("ledger: Config.Merkle and Config.Replicator cannot be combined yet")
	}
	var cpSize uint64
	var cpRoot [32]byte
	if h := l.head.Load(); h != nil {
		cpSize, cpRoot = h.Size, h.Root
	}
	end := l.tree.size()
	bs, err := l.cfg.Merkle.Size(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the Merkle backend's size: %w", err)
	}
	if bs > end {
		return fmt.Errorf("the Merkle backend holds %d leaves but this ledger only %d (restored from an older backup, or the backend's tree belongs to another log?): %w", bs, end, ErrBackendAhead)
	}
	if bs < cpSize {
		l.log.Warn("the Merkle backend is behind the ledger; sending it the stored leaf records", "backend_size", bs, "ledger_size", cpSize)
		if err := l.catchUp(ctx, bs, cpSize); err != nil {
			return err
		}
	}
	if end > cpSize {
		// Finish the pending batch through the normal path: (ii) to (v).
		if err := l.commit(ctx, &Batch{}); err != nil {
			return fmt.Errorf("couldn't finish the pending batch %d..%d: %w", cpSize, end-1, err)
		}
		l.log.Info("finished the pending batch", "from", cpSize, "to", end)
		return nil
	}
	if cpSize == 0 {
		return nil
	}
	got, err := l.cfg.Merkle.Integrate(ctx, cpSize, nil)
	if err != nil {
		return fmt.Errorf("couldn't read the Merkle backend's root at size %d: %w", cpSize, err)
	}
	if got != cpRoot {
		return fmt.Errorf("at tree size %d the Merkle backend's root is %x but the checkpoint's is %x: %w", cpSize, got[:8], cpRoot[:8], ErrBackendMismatch)
	}
	return nil
}

// catchUp sends the stored leaf records from..to-1 to the backend in
// chunks, comparing the backend's root after each with the root of the
// tree of that size computed from the stored tiles.
func (l *Ledger) catchUp(ctx context.Context, from, to uint64) error {
	started := time.Now()
	for first := from; first < to; {
		last := min(first+catchUpChunk, to)
		recs := make([][]byte, 0, last-first)
		err := l.store.Scan(ctx, u64Key(tagLeaf, first), u64Key(tagLeaf, last), func(_, v []byte) error {
			recs = append(recs, append([]byte(nil), v...))
			return nil
		})
		if err != nil {
			return fmt.Errorf("couldn't read leaf records %d..%d: %w", first, last-1, err)
		}
		if uint64(len(recs)) != last-first {
			return fmt.Errorf("only %d of leaf records %d..%d are stored: %w", len(recs), first, last-1, ErrCorrupt)
		}
		got, err := l.cfg.Merkle.Integrate(ctx, first, recs)
		if err != nil {
			return fmt.Errorf("the Merkle backend couldn't integrate stored leaves %d..%d: %w", first, last-1, err)
		}
		t, err := loadTree(ctx, l, last)
		if err != nil {
			return fmt.Errorf("couldn't compute the tree of size %d: %w", last, err)
		}
		want, err := t.root()
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("at tree size %d the Merkle backend's root is %x but the ledger's is %x: %w", last, got[:8], want[:8], ErrBackendMismatch)
		}
		l.log.Info("Merkle backend catching up", "size", last, "target", to, "elapsed", time.Since(started).Round(time.Millisecond))
		first = last
	}
	return nil
}
