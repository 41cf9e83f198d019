// Package index is the FG's own verified copy of the log, kept by the
// console (`spoor dashboard`) in its data folder on the FG's machine.
//
// Data flows one way: the ledger's HTTP API (the kept checkpoints from
// GET /v1/checkpoints, the entries from GET /v1/entries with the FG's
// token, the public level-0 tiles) --Follow--> checks --> three files
// --Source--> the audit engine (audit.Run) and the console's pages. Nothing
// is shown before it is verified: a new checkpoint must open with the
// pinned log and cosigner keys, extend the checkpoint before it (the
// console's own leaf hashes must give its root: consistency by
// construction, since the older tree is the copy's own), and every new leaf
// record must hash to the hash the ledger's tile holds for it. A tombstone
// (an erasure on request or a retention deletion) is applied as it is
// followed: the erased body is overwritten with zeros in place and synced,
// so the FG's copy holds no more than the ledger does.
//
// # Format: three append-only files, not Pebble
//
// The log only grows and every read is either "everything in order" (the
// audit) or "one leaf by index" (a page), so three flat files serve it:
//
//	leaves       40 bytes per leaf: its leaf hash, and the offset of its
//	             record in entries (fixed width: leaf i is at 40*i)
//	entries      per leaf: state (1 byte: body, none, unreadable), leaf record
//	             length (1), body length (4), findings length (4), then the
//	             leaf record, the body and the ledger's stored findings (JSON)
//	checkpoints  per verified checkpoint: length (4), number (8), signed note
//
// All integers are big-endian. An erasure rewrites the body in place with
// zeros and sets the state to "none": a key-value store such as Pebble
// would only mark the value deleted and keep the bytes in older files until
// a compaction, which is the opposite of what an erasure must do on the
// FG's disk; and the console may not import the ledger's storage (see
// internal/layering). The files are 0600 in a 0700 folder.
//
// # Crash ordering
//
// Follow appends entries and leaves, syncs both, then applies the
// tombstones of the new entries (and syncs), then appends the checkpoint
// and syncs it: the checkpoints file decides what is committed. Open (the
// recovery path) reads the checkpoints, cuts leaves and entries back to the
// newest one's size, rebuilds the tree from the stored leaf hashes and
// refuses to open a copy whose root is not the checkpoint's, and applies
// every committed tombstone again (an erasure interrupted by a crash is
// finished at the next start).
package index

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// The files of the copy, in its folder.
const (
	LeavesFile      = "leaves"
	EntriesFile     = "entries"
	CheckpointsFile = "checkpoints"
)

const (
	leafStride  = 40
	entryHeader = 1 + 1 + 4 + 4
)

// The states of a stored entry.
const (
	stateBody       byte = 0 // the body is stored
	stateNone       byte = 1 // no body: erased at the ledger, or here by a tombstone
	stateUnreadable byte = 2 // the ledger served a body that is not the one its leaf commits to
)

// unreadableReason is what the audit is told about an entry whose body the
// ledger served wrongly: the console did not keep those bytes.
const unreadableReason = "the ledger served a body whose SHA-256 is not the leaf record's body hash; the console did not keep it"

// ErrCorrupt is returned (wrapped) when the copy's files do not agree with
// its own verified checkpoint.
var ErrCorrupt = errors.New("index: the local copy does not match its verified checkpoint")

// Index is the FG's local copy. One goroutine follows the log (Follow);
// any number may read (Entries, Entry, Checkpoints) at the same time.
type Index struct {
	dir  string
	keys *verifier.LogKeys

	// follow serialises Follow and Reverify: one writer.
	follow sync.Mutex

	leaves, entries, cps *os.File

	// mu guards what readers see: the committed size and checkpoints, and
	// the bytes of committed entries while a tombstone overwrites them.
	mu        sync.RWMutex
	size      uint64
	entryEnd  int64
	cpsEnd    int64
	kept      []audit.StoredCheckpoint
	newest    *verifier.Checkpoint
	rng       *compact.Range // over [0, size)
	erasedCnt uint64
}

var rangeFactory = &compact.RangeFactory{Hash: verifier.HashChildren}

// Open opens (or creates) the copy in dir with the pinned keys, and checks
// the stored tree against the newest stored checkpoint.
func Open(dir string, keys *verifier.LogKeys) (*Index, error) {
	if keys == nil {
		return nil, errors.New("index: the pinned keys are required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("index: couldn't make the folder: %w", err)
	}
	x := &Index{dir: dir, keys: keys, rng: rangeFactory.NewEmptyRange(0)}
	var err error
	open := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			// A file made by an older version or by hand: the copy
			// holds envelopes, so it is the FG's alone.
			err = f.Chmod(0o600)
		}
		return f
	}
	x.leaves, x.entries, x.cps = open(LeavesFile), open(EntriesFile), open(CheckpointsFile)
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("index: couldn't open the files: %w", err)
	}
	if err := x.recover(); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// Close closes the files.
func (x *Index) Close() error {
	var errs []error
	for _, f := range []*os.File{x.leaves, x.entries, x.cps} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// Dir is the copy's folder.
func (x *Index) Dir() string { return x.dir }

// recover reads the checkpoints, cuts the other files back to the newest
// one and checks the tree against it.
func (x *Index) recover() error {
	st, err := x.cps.Stat()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	r := bufio.NewReader(io.NewSectionReader(x.cps, 0, st.Size()))
	var off int64
	for {
		var hdr [12]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break // the end, or a record cut by a crash: not committed
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n > verifier.MaxCheckpointSize {
			return fmt.Errorf("%w: a checkpoint record of %d bytes at offset %d", ErrCorrupt, n, off)
		}
		note := make([]byte, n)
		if _, err := io.ReadFull(r, note); err != nil {
			break
		}
		cp, err := verifier.OpenCheckpoint(note, x.keys)
		if err != nil {
			return fmt.Errorf("%w: stored checkpoint %d: %w", ErrCorrupt, binary.BigEndian.Uint64(hdr[4:]), err)
		}
		x.kept = append(x.kept, audit.StoredCheckpoint{Seq: binary.BigEndian.Uint64(hdr[4:]), Note: note})
		x.newest = cp
		off += 12 + int64(n)
	}
	x.cpsEnd = off
	if err := x.cps.Truncate(off); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if x.newest != nil {
		x.size = x.newest.Size
	}
	// The leaves of the committed tree, and the end of their entries.
	lst, err := x.leaves.Stat()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if uint64(lst.Size()) < x.size*leafStride {
		return fmt.Errorf("%w: %d leaves stored, the checkpoint has %d", ErrCorrupt, lst.Size()/leafStride, x.size)
	}
	if err := x.leaves.Truncate(int64(x.size * leafStride)); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	lr := bufio.NewReaderSize(io.NewSectionReader(x.leaves, 0, int64(x.size*leafStride)), 1<<20)
	var rec [leafStride]byte
	var lastOff int64 = -1
	for i := uint64(0); i < x.size; i++ {
		if _, err := io.ReadFull(lr, rec[:]); err != nil {
			return fmt.Errorf("index: reading leaf %d: %w", i, err)
		}
		// The range keeps the slice it is given.
		if err := x.rng.Append(append([]byte(nil), rec[:32]...), nil); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		lastOff = int64(binary.BigEndian.Uint64(rec[32:]))
	}
	if x.size > 0 {
		root, err := x.rng.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if [32]byte(root) != x.newest.Hash {
			return fmt.Errorf("%w: the stored leaf hashes give root %x, the checkpoint of size %d signs %x", ErrCorrupt, root[:8], x.size, x.newest.Hash[:8])
		}
		hdr, err := x.readHeader(lastOff)
		if err != nil {
			return err
		}
		x.entryEnd = lastOff + hdr.total()
	}
	if err := x.entries.Truncate(x.entryEnd); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	// Finish any erasure a crash interrupted.
	return x.reapplyTombstones()
}

// header is an entry record's fixed part.
type header struct {
	state                byte
	recLen               int
	bodyLen, findingsLen int
}

func (h header) total() int64 { return int64(entryHeader + h.recLen + h.bodyLen + h.findingsLen) }

func (x *Index) readHeader(off int64) (header, error) {
	var b [entryHeader]byte
	if _, err := x.entries.ReadAt(b[:], off); err != nil {
		return header{}, fmt.Errorf("%w: the entry record at offset %d: %w", ErrCorrupt, off, err)
	}
	return header{state: b[0], recLen: int(b[1]), bodyLen: int(binary.BigEndian.Uint32(b[2:])), findingsLen: int(binary.BigEndian.Uint32(b[6:]))}, nil
}

// Size is the size of the newest verified checkpoint: the copy holds the
// entries [0, Size).
func (x *Index) Size() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.size
}

// Newest returns the newest verified checkpoint, nil before the first.
func (x *Index) Newest() *verifier.Checkpoint {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.newest
}

// Checkpoints implements audit.Source: the checkpoints the copy verified,
// in order.
func (x *Index) Checkpoints(context.Context) ([]audit.StoredCheckpoint, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]audit.StoredCheckpoint(nil), x.kept...), nil
}

// leafAt returns leaf i's hash and record offset; the caller holds mu.
func (x *Index) leafAt(i uint64) ([32]byte, int64, error) {
	var b [leafStride]byte
	if _, err := x.leaves.ReadAt(b[:], int64(i*leafStride)); err != nil {
		return [32]byte{}, 0, fmt.Errorf("index: reading leaf %d: %w", i, err)
	}
	return [32]byte(b[:32]), int64(binary.BigEndian.Uint64(b[32:])), nil
}

// LeafHash returns the stored hash of leaf i < Size.
func (x *Index) LeafHash(i uint64) ([32]byte, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if i >= x.size {
		return [32]byte{}, fmt.Errorf("index: leaf %d is beyond the verified size %d", i, x.size)
	}
	h, _, err := x.leafAt(i)
	return h, err
}

// LeafTile implements audit.TileSource from the stored leaf hashes, so
// that the audit of the copy compares every leaf record with the hash
// stored beside it (a changed file on the FG's disk shows there).
func (x *Index) LeafTile(_ context.Context, n uint64, width int) ([]byte, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	start := n * verifier.TileWidth
	if start+uint64(width) > x.size {
		return nil, fmt.Errorf("index: tile %d of width %d is beyond the verified size %d", n, width, x.size)
	}
	out := make([]byte, 0, width*32)
	b := make([]byte, width*leafStride)
	if _, err := x.leaves.ReadAt(b, int64(start*leafStride)); err != nil {
		return nil, fmt.Errorf("index: reading tile %d: %w", n, err)
	}
	for i := range width {
		out = append(out, b[i*leafStride:i*leafStride+32]...)
	}
	return out, nil
}

// Entry returns the stored entry at index i < Size, as the audit reads it.
func (x *Index) Entry(i uint64) (*audit.Entry, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if i >= x.size {
		return nil, fmt.Errorf("index: entry %d is beyond the verified size %d", i, x.size)
	}
	return x.entryLocked(i)
}

func decodeEntry(i uint64, hdr header, b []byte) (*audit.Entry, error) {
	e := &audit.Entry{Index: i, LeafRecord: b[:hdr.recLen:hdr.recLen]}
	body := b[hdr.recLen : hdr.recLen+hdr.bodyLen : hdr.recLen+hdr.bodyLen]
	switch hdr.state {
	case stateBody:
		e.Body = body
	case stateUnreadable:
		e.BodyError = unreadableReason
	case stateNone:
	default:
		return nil, fmt.Errorf("%w: entry %d has state %d", ErrCorrupt, i, hdr.state)
	}
	if hdr.findingsLen > 0 {
		if err := json.Unmarshal(b[hdr.recLen+hdr.bodyLen:], &e.Findings); err != nil {
			return nil, fmt.Errorf("%w: entry %d's findings: %w", ErrCorrupt, i, err)
		}
	}
	return e, nil
}

// scanChunk is how many entries Entries reads under one read lock: a
// tombstone being applied waits at most one chunk.
const scanChunk = 512

// Entries implements audit.Source over the verified entries [from, to),
// to capped at Size.
func (x *Index) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	for from < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := x.chunk(from, min(to, from+scanChunk))
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		from += uint64(len(batch))
	}
	return nil
}

// chunk reads entries [from, to) ∩ [0, Size) under the read lock.
func (x *Index) chunk(from, to uint64) ([]*audit.Entry, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	to = min(to, x.size)
	if from >= to {
		return nil, nil
	}
	_, start, err := x.leafAt(from)
	if err != nil {
		return nil, err
	}
	end := x.entryEnd
	if to < x.size {
		if _, end, err = x.leafAt(to); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, end-start)
	if _, err := x.entries.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("index: reading entries [%d, %d): %w", from, to, err)
	}
	out := make([]*audit.Entry, 0, to-from)
	for i, p := from, 0; i < to; i++ {
		if len(buf)-p < entryHeader {
			return nil, fmt.Errorf("%w: entry %d is cut short", ErrCorrupt, i)
		}
		hdr := header{state: buf[p], recLen: int(buf[p+1]), bodyLen: int(binary.BigEndian.Uint32(buf[p+2:])), findingsLen: int(binary.BigEndian.Uint32(buf[p+6:]))}
		n := int(hdr.total())
		if len(buf)-p < n {
			return nil, fmt.Errorf("%w: entry %d is cut short", ErrCorrupt, i)
		}
		e, err := decodeEntry(i, hdr, buf[p+entryHeader:p+n])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		p += n
	}
	return out, nil
}

// appendEncoded appends e's record to dst.
func appendEncoded(dst []byte, state byte, rec, body []byte, findings []events.Finding) ([]byte, error) {
	var fj []byte
	if len(findings) > 0 {
		var err error
		if fj, err = json.Marshal(findings); err != nil {
			return nil, err
		}
	}
	if len(rec) > 255 {
		return nil, fmt.Errorf("index: a leaf record of %d bytes", len(rec))
	}
	dst = append(dst, state, byte(len(rec)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(fj)))
	dst = append(dst, rec...)
	dst = append(dst, body...)
	return append(dst, fj...), nil
}

// scrub overwrites the body of committed entry i with zeros and marks it
// as holding none; the caller holds mu for writing and syncs afterwards.
// It reports whether there was a body to remove.
func (x *Index) scrub(i uint64) (bool, error) {
	_, off, err := x.leafAt(i)
	if err != nil {
		return false, err
	}
	hdr, err := x.readHeader(off)
	if err != nil {
		return false, err
	}
	if hdr.state == stateNone {
		return false, nil
	}
	zeros := make([]byte, hdr.bodyLen)
	if _, err := x.entries.WriteAt(zeros, off+entryHeader+int64(hdr.recLen)); err != nil {
		return false, fmt.Errorf("index: erasing entry %d: %w", i, err)
	}
	if _, err := x.entries.WriteAt([]byte{stateNone}, off); err != nil {
		return false, fmt.Errorf("index: erasing entry %d: %w", i, err)
	}
	return true, nil
}

// reapplyTombstones applies every committed tombstone again: those whose
// erasure a crash interrupted are finished, the others are no-ops.
func (x *Index) reapplyTombstones() error {
	var targets []uint64
	err := x.Entries(context.Background(), 0, x.size, func(e *audit.Entry) error {
		if rec, err := verifier.ParseLeafRecord(e.LeafRecord); err == nil && rec.Type == verifier.EntryTombstone && rec.ErasedIndex < e.Index {
			targets = append(targets, rec.ErasedIndex)
		}
		return nil
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	changed := false
	for _, t := range targets {
		did, err := x.scrub(t)
		if err != nil {
			return err
		}
		changed = changed || did
	}
	x.erasedCnt = uint64(len(targets))
	if changed {
		return x.entries.Sync()
	}
	return nil
}

// Reverified is what a full re-verification of the copy found.
type Reverified struct {
	// Size is the verified size checked; Checkpoints how many checkpoints.
	Size        uint64
	Checkpoints int
	// Erased counts the entries without a body.
	Erased uint64
	At     time.Time
}

// Reverify checks the whole copy again from its files: every stored
// checkpoint against the pinned keys, every leaf record against its stored
// leaf hash, every stored body against its leaf record's body hash, and the
// tree's root at every checkpoint's size. It runs beside the readers and
// holds the follower off meanwhile.
func (x *Index) Reverify(ctx context.Context) (*Reverified, error) {
	x.follow.Lock()
	defer x.follow.Unlock()
	cps, _ := x.Checkpoints(ctx)
	size := x.Size()
	opened := make([]*verifier.Checkpoint, 0, len(cps))
	for _, c := range cps {
		cp, err := verifier.OpenCheckpoint(c.Note, x.keys)
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint %d: %w", ErrCorrupt, c.Seq, err)
		}
		opened = append(opened, cp)
	}
	rng := rangeFactory.NewEmptyRange(0)
	next := 0
	meet := func() error {
		for next < len(opened) && opened[next].Size == rng.End() {
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return err
			}
			if [32]byte(root) != opened[next].Hash {
				return fmt.Errorf("%w: at size %d the root is %x, checkpoint %d signs %x", ErrCorrupt, rng.End(), root[:8], cps[next].Seq, opened[next].Hash[:8])
			}
			next++
		}
		return nil
	}
	out := &Reverified{Size: size, Checkpoints: len(cps)}
	err := x.Entries(ctx, 0, size, func(e *audit.Entry) error {
		h := verifier.LeafHash(e.LeafRecord)
		stored, err := x.LeafHash(e.Index)
		if err != nil {
			return err
		}
		if h != stored {
			return fmt.Errorf("%w: leaf %d's record hashes to %x, the stored leaf hash is %x", ErrCorrupt, e.Index, h[:8], stored[:8])
		}
		if e.Body == nil {
			out.Erased++
		} else if rec, err := verifier.ParseLeafRecord(e.LeafRecord); err == nil && sha256.Sum256(e.Body) != rec.BodyHash {
			return fmt.Errorf("%w: leaf %d's stored body is not the one its leaf record commits to", ErrCorrupt, e.Index)
		}
		if err := rng.Append(h[:], nil); err != nil {
			return err
		}
		return meet()
	})
	if err != nil {
		return nil, err
	}
	if err := meet(); err != nil {
		return nil, err
	}
	if next != len(opened) {
		return nil, fmt.Errorf("%w: checkpoint %d (size %d) was not met", ErrCorrupt, cps[next].Seq, opened[next].Size)
	}
	out.At = time.Now()
	return out, nil
}

// ErasedCount is how many tombstones the copy applied.
func (x *Index) ErasedCount() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.erasedCnt
}
