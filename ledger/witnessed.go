package ledger

// The witnessed head. When the covenant in force has a witness policy, a
// checkpoint the ledger signs (the signed head: Head) is not yet what the
// world should trust: the policy's witnesses must first cosign it, each
// vouching that it extends every checkpoint of this log they cosigned
// before, and stating the time. The ledger keeps the newest checkpoint
// that met the quorum, with the cosignature lines appended to its note,
// as the witnessed head (WitnessedHead).
//
// Gathering the cosignatures is not the sequencer's job (it never waits on
// witnesses): ledger/witnessing does it beside the ledger, and hands the
// result to PutWitnessed. That stores the witnessed note through the
// sequencer, as a record beside the log under tagWitnessed and the
// checkpoint's number, so that it is durable before anyone is shown it and
// travels on SPOOR_LOG to every standby, which then serves the same
// witnessed head. Storing it commits a batch and so signs a new checkpoint
// of the same size; the witnessing loop sends witnesses only checkpoints
// that grew the tree, or one a minute when idle, so that this does not
// feed itself.
//
// PublicHead says which head the read API serves: the witnessed one when a
// policy is in force (fail-closed, the default), or, with
// Config.WitnessFailOpen during roll-out, the signed one marked as not
// witnessed. Tiles and proofs are served up to the signed head either way:
// the witnessed head's size is never above it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// ErrNotWitnessed means a witness policy is in force and no checkpoint that
// met its quorum covers what was asked for (yet): retry later.
var ErrNotWitnessed = errors.New("ledger: no witnessed checkpoint covers it yet")

// WitnessPolicy returns the witness policy of the covenant in force, or
// nil when it has none. The error is set when its text does not parse, in
// which case witnesses are required and can never be satisfied.
func (l *Ledger) WitnessPolicy() (*events.WitnessPolicy, error) {
	v := l.chainView.Load()
	if v == nil {
		return nil, nil
	}
	return v.Policy, v.PolicyErr
}

// WitnessingRequired reports whether checkpoints must be witnessed before
// they are served as the log's head: a policy is in force and the ledger
// does not run fail-open.
func (l *Ledger) WitnessingRequired() bool {
	p, err := l.WitnessPolicy()
	return (p != nil || err != nil) && !l.cfg.WitnessFailOpen
}

// WitnessedHead returns the newest checkpoint whose cosignatures met the
// witness policy, its Note carrying them, or nil when there is none.
func (l *Ledger) WitnessedHead() *Head { return l.witnessed.Load() }

// PublicHead returns the head the read API serves as /checkpoint and that
// answers are built on, and whether it is witnessed. Without a policy it
// is the signed head, not witnessed. With one it is the witnessed head
// (nil until there is one), unless the ledger runs fail-open: then the
// witnessed head when it is of the signed head's tree (same size and
// root), else the signed head, not witnessed. The tree decides, not the
// checkpoint's number: storing the cosignatures signs a new checkpoint of
// the same tree, so the witnessed checkpoint is never the newest signed
// one, and comparing numbers would mark every checkpoint unwitnessed.
func (l *Ledger) PublicHead() (*Head, bool) {
	p, perr := l.WitnessPolicy()
	if p == nil && perr == nil {
		return l.head.Load(), false
	}
	w := l.witnessed.Load()
	if !l.cfg.WitnessFailOpen {
		return w, w != nil
	}
	h := l.head.Load()
	if w != nil && h != nil && w.Size == h.Size && w.Root == h.Root {
		return w, true
	}
	return h, false
}

// HeadCovering returns the head an answer about leaf index is given
// against: the witnessed head when a policy is in force and it covers
// index (ErrNotWitnessed when it does not), otherwise the signed head;
// witnessed says which.
func (l *Ledger) HeadCovering(index uint64) (h *Head, witnessed bool, err error) {
	if w := l.witnessed.Load(); w != nil && index < w.Size {
		if p, perr := l.WitnessPolicy(); p != nil || perr != nil {
			return w, true, nil
		}
	}
	if l.WitnessingRequired() {
		return nil, false, fmt.Errorf("leaf %d: %w", index, ErrNotWitnessed)
	}
	h = l.head.Load()
	if h == nil || index >= h.Size {
		return nil, false, fmt.Errorf("leaf %d is beyond the checkpoint: %w", index, ErrNotFound)
	}
	return h, false, nil
}

// PutWitnessed stores the checkpoint of head h, with the witness
// cosignature lines appended to its note, as the witnessed head, and
// returns once it is durable (and, with replication, on SPOOR_LOG). The
// lines must verify (witness/client checked them against the policy);
// PutWitnessed checks that the note still carries the log's own signatures
// and names h's size and root, and ignores a head older than the one it
// holds.
func (l *Ledger) PutWitnessed(ctx context.Context, h *Head, lines []byte) error {
	note, err := witnessedNote(h.Note, lines)
	if err != nil {
		return err
	}
	cp, err := verifier.OpenCheckpoint(note, l.cfg.Keys)
	if err != nil {
		return fmt.Errorf("ledger: the witnessed checkpoint does not open with the log's keys: %w", err)
	}
	if cp.Size != h.Size || cp.Hash != h.Root {
		return fmt.Errorf("ledger: the witnessed checkpoint names size %d, its head %d", cp.Size, h.Size)
	}
	if w := l.witnessed.Load(); w != nil && w.Seq >= h.Seq {
		return nil
	}
	var b Batch
	b.Set(u64Key(tagWitnessed, h.Seq), note)
	b.Set(metaWitnessed, binary.BigEndian.AppendUint64(nil, h.Seq))
	// The first witnessed checkpoint at a size stays the one found by
	// size: its witnesses' times are the earliest, the tightest bound.
	if _, err := l.store.Get(ctx, u64Key(tagWitnessedSize, h.Size)); errors.Is(err, ErrNotFound) {
		b.Set(u64Key(tagWitnessedSize, h.Size), binary.BigEndian.AppendUint64(nil, h.Seq))
	} else if err != nil {
		return fmt.Errorf("ledger: couldn't read the witnessed checkpoints by size: %w", err)
	}
	if err := l.commitRecords(ctx, b.Ops); err != nil {
		return fmt.Errorf("ledger: couldn't store the witnessed checkpoint %d: %w", h.Seq, err)
	}
	l.setWitnessed(&Head{Size: h.Size, Root: h.Root, Note: note, Seq: h.Seq})
	return nil
}

// witnessedNote appends the cosignature lines to the signature block of a
// signed note.
func witnessedNote(signed, lines []byte) ([]byte, error) {
	if len(lines) == 0 || lines[len(lines)-1] != '\n' || !bytes.HasSuffix(signed, []byte("\n")) ||
		bytes.Contains(lines, []byte("\n\n")) {
		return nil, errors.New("ledger: cosignature lines must be whole signature lines")
	}
	return append(bytes.Clone(signed), lines...), nil
}

// setWitnessed publishes w as the witnessed head unless a newer one is
// published already.
func (l *Ledger) setWitnessed(w *Head) {
	for {
		old := l.witnessed.Load()
		if old != nil && old.Seq >= w.Seq {
			return
		}
		if l.witnessed.CompareAndSwap(old, w) {
			l.metrics.observeWitnessed(w)
			return
		}
	}
}

// metaWitnessed holds the number of the newest witnessed checkpoint, so
// that Open reads one record rather than every witnessed one.
var metaWitnessed = []byte("mwitnessed-seq")

// loadWitnessed reads the newest stored witnessed checkpoint at Open (and
// on a standby, after a batch that carried one).
func (l *Ledger) loadWitnessed(ctx context.Context) error {
	seqBytes, err := l.store.Get(ctx, metaWitnessed)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read the witnessed checkpoint's number: %w", err)
	}
	if len(seqBytes) != 8 {
		return fmt.Errorf("the witnessed checkpoint's number is %d bytes: %w", len(seqBytes), ErrCorrupt)
	}
	seq := binary.BigEndian.Uint64(seqBytes)
	note, err := l.store.Get(ctx, u64Key(tagWitnessed, seq))
	if err != nil {
		return fmt.Errorf("couldn't read the witnessed checkpoint %d: %w", seq, err)
	}
	cp, err := verifier.OpenCheckpoint(note, l.cfg.Keys)
	if err != nil {
		return fmt.Errorf("the witnessed checkpoint %d does not open with this log's keys (%w): %w", seq, err, ErrCorrupt)
	}
	if h := l.head.Load(); h == nil || cp.Size > h.Size {
		return fmt.Errorf("the witnessed checkpoint %d has size %d, beyond the log's head: %w", seq, cp.Size, ErrCorrupt)
	}
	l.setWitnessed(&Head{Size: cp.Size, Root: cp.Hash, Note: note, Seq: seq})
	return nil
}

// WitnessedCheckpoints calls fn for every stored witnessed checkpoint,
// oldest first, with the number of the checkpoint it cosigns.
func (l *Ledger) WitnessedCheckpoints(ctx context.Context, fn func(seq uint64, note []byte) error) error {
	return l.store.Scan(ctx, []byte{tagWitnessed}, []byte{tagWitnessed + 1}, func(k, v []byte) error {
		if len(k) != 9 {
			return nil
		}
		return fn(binary.BigEndian.Uint64(k[1:]), v)
	})
}

// FirstWitnessedCovering returns the first stored witnessed checkpoint
// whose tree includes leaf index (the smallest size above it), or
// ErrNotFound when none does yet.
func (l *Ledger) FirstWitnessedCovering(ctx context.Context, index uint64) (*Head, error) {
	var seq uint64
	found := false
	err := l.store.Scan(ctx, u64Key(tagWitnessedSize, index+1), []byte{tagWitnessedSize + 1}, func(k, v []byte) error {
		if len(k) != 9 || len(v) != 8 {
			return fmt.Errorf("witnessed checkpoint by size: %w", ErrCorrupt)
		}
		seq, found = binary.BigEndian.Uint64(v), true
		return errStopScan
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no witnessed checkpoint includes leaf %d: %w", index, ErrNotFound)
	}
	note, err := l.store.Get(ctx, u64Key(tagWitnessed, seq))
	if err != nil {
		return nil, fmt.Errorf("witnessed checkpoint %d: %w", seq, err)
	}
	cp, err := verifier.OpenCheckpoint(note, l.cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("witnessed checkpoint %d (%w): %w", seq, err, ErrCorrupt)
	}
	return &Head{Size: cp.Size, Root: cp.Hash, Note: note, Seq: seq}, nil
}
