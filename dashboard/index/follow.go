package index

// This file follows the log: the new kept checkpoints and the entries up
// to the newest, each checked before it is committed (see the package
// doc for what and in which order).

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/monitor"
)

// Remote is the ledger the copy follows: its HTTP API with the FG's token.
type Remote struct {
	// Src reads the entries and the level-0 tiles.
	Src *audit.HTTPSource
}

// Alarm is a verified sign that the ledger misbehaves, found while
// following: the copy stops at its last verified checkpoint and the
// console shows the alarm. Its kinds are the monitor's.
type Alarm struct {
	Kind   monitor.AlarmKind
	Detail string
	At     time.Time
}

func (a *Alarm) Error() string { return string(a.Kind) + ": " + a.Detail }

// Progress is how far a Follow is: entries fetched and checked of those to
// fetch. It is safe to read at any time.
type Progress struct {
	Done, Total atomic.Uint64
}

// Erased is handed to Follow's onErase for every body a tombstone removes
// from the copy, just before it is overwritten: the console takes its
// disclosure out of its tables.
type Erased struct {
	Leaf uint64
	Body []byte
}

// FollowResult says what one Follow did.
type FollowResult struct {
	// From and To bound the entries added: [From, To).
	From, To uint64
	// Erased lists the leaves whose bodies were removed.
	Erased []uint64
}

// commitEvery bounds how long a catching-up Follow works before it commits
// at the next checkpoint, so that the pages see progress.
const commitEvery = 2 * time.Second

// Follow reads the kept checkpoints after the copy's newest, checks them
// and the entries up to the newest of them, and commits them. onErase,
// if set, gets each body a new tombstone removes, before it is removed;
// onCommit, if set, is called after every commit with the range it added.
// An *Alarm error means the ledger gave a verified sign of misbehaviour.
func (x *Index) Follow(ctx context.Context, r Remote, p *Progress, onErase func(Erased), onCommit func(FollowResult)) (FollowResult, error) {
	x.follow.Lock()
	defer x.follow.Unlock()
	res := FollowResult{From: x.Size(), To: x.Size()}
	x.mu.RLock()
	var fromSeq uint64
	if n := len(x.kept); n > 0 {
		fromSeq = x.kept[n-1].Seq + 1
	}
	prev := x.newest
	x.mu.RUnlock()
	fresh, err := fetchCheckpoints(ctx, r.Src, fromSeq)
	if err != nil {
		return res, err
	}
	// Open each with the pinned keys; sizes never go down; the same size
	// means the same root.
	type pending struct {
		stored audit.StoredCheckpoint
		cp     *verifier.Checkpoint
	}
	var todo []pending
	for _, sc := range fresh {
		cp, err := verifier.OpenCheckpoint(sc.Note, x.keys)
		if err != nil {
			return res, &Alarm{Kind: monitor.BadSignature, Detail: fmt.Sprintf("kept checkpoint %d does not verify with the pinned keys: %v", sc.Seq, err), At: time.Now()}
		}
		if prev != nil {
			switch {
			case cp.Size < prev.Size:
				return res, &Alarm{Kind: monitor.Rollback, Detail: fmt.Sprintf("kept checkpoint %d has size %d, after size %d", sc.Seq, cp.Size, prev.Size), At: time.Now()}
			case cp.Size == prev.Size && cp.Hash != prev.Hash:
				return res, &Alarm{Kind: monitor.Fork, Detail: fmt.Sprintf("kept checkpoint %d has size %d with root %x, another root than %x", sc.Seq, cp.Size, cp.Hash[:8], prev.Hash[:8]), At: time.Now()}
			}
		}
		todo = append(todo, pending{sc, cp})
		prev = cp
	}
	if len(todo) == 0 {
		return res, nil
	}
	target := todo[len(todo)-1].cp.Size
	start := x.Size()
	if p != nil {
		p.Total.Store(target)
		p.Done.Store(start)
	}

	// The work of this Follow, up to the next commit.
	w := &writer{x: x, leafOff: int64(start * leafStride), entOff: x.entryEnd, rng: cloneRange(x.rng), next: start}
	lastCommit := time.Now()
	cpAt := 0 // the next checkpoint of todo to meet
	commit := func() error {
		// Commit every checkpoint met so far.
		met := 0
		for cpAt+met < len(todo) && todo[cpAt+met].cp.Size <= w.next {
			met++
		}
		if met == 0 {
			return nil
		}
		done := todo[cpAt : cpAt+met]
		cpAt += met
		size := done[len(done)-1].cp.Size
		var cps []audit.StoredCheckpoint
		var newest *verifier.Checkpoint
		for _, d := range done {
			cps = append(cps, d.stored)
			newest = d.cp
		}
		from := x.Size()
		erased, err := w.commit(size, cps, newest, onErase)
		if err != nil {
			return err
		}
		res.To = size
		res.Erased = append(res.Erased, erased...)
		lastCommit = time.Now()
		if onCommit != nil {
			onCommit(FollowResult{From: from, To: size, Erased: erased})
		}
		return nil
	}
	// Checkpoints whose size is already the copy's (a repeat) need only
	// their root compared.
	for cpAt < len(todo) && todo[cpAt].cp.Size <= start {
		if err := w.meet(todo[cpAt].cp, uint64(todo[cpAt].stored.Seq)); err != nil {
			return res, err
		}
		if err := commit(); err != nil {
			return res, err
		}
	}
	if start < target {
		tiles := &tileCache{src: r.Src, size: target}
		err = fetchOrdered(ctx, r.Src, start, target, func(e *audit.Entry) error {
			if e.Index != w.next {
				return fmt.Errorf("index: the ledger served entry %d where %d was expected (a leaf record is missing)", e.Index, w.next)
			}
			h := verifier.LeafHash(e.LeafRecord)
			th, err := tiles.hash(ctx, e.Index)
			if err != nil {
				return err
			}
			if th != h {
				return &Alarm{Kind: monitor.BadTiles, Detail: fmt.Sprintf("leaf %d: the leaf record served hashes to %x, the ledger's tile holds %x", e.Index, h[:8], th[:8]), At: time.Now()}
			}
			if err := w.add(e, h); err != nil {
				return err
			}
			if p != nil {
				p.Done.Store(w.next)
			}
			// The roots of every checkpoint of this size.
			for i := cpAt; i < len(todo) && todo[i].cp.Size == w.next; i++ {
				if err := w.meet(todo[i].cp, todo[i].stored.Seq); err != nil {
					return err
				}
			}
			if cpAt < len(todo) && todo[cpAt].cp.Size == w.next && (time.Since(lastCommit) > commitEvery || w.next == target) {
				return commit()
			}
			return nil
		})
		if err != nil {
			w.abandon()
			return res, err
		}
		if w.next != target {
			w.abandon()
			return res, fmt.Errorf("index: the ledger served entries up to %d, its checkpoint has %d", w.next, target)
		}
	}
	if err := commit(); err != nil {
		return res, err
	}
	return res, nil
}

// writer appends a Follow's entries beyond the committed end.
type writer struct {
	x               *Index
	leafBuf, entBuf []byte
	leafOff, entOff int64
	rng             *compact.Range
	next            uint64
	tombstones      []uint64 // erased leaves named by the entries not yet committed
}

// add checks e's body against its leaf record and buffers it.
func (w *writer) add(e *audit.Entry, h [32]byte) error {
	state, body := stateNone, e.Body
	rec, perr := verifier.ParseLeafRecord(e.LeafRecord)
	switch {
	case e.BodyError != "":
		state, body = stateUnreadable, nil
	case body == nil:
	case perr == nil && sha256.Sum256(body) != rec.BodyHash:
		// The ledger served other bytes than the log committed to: not
		// kept; the audit names the leaf.
		state, body = stateUnreadable, nil
	case perr != nil:
		// An entry type this version does not know (as the audit, it is
		// kept and counted, not read): its body is kept as served.
		var ute *verifier.UnknownEntryTypeError
		if !errors.As(perr, &ute) {
			state, body = stateUnreadable, nil
		} else {
			state = stateBody
		}
	default:
		state = stateBody
	}
	if perr == nil && rec.Type == verifier.EntryTombstone && rec.ErasedIndex < e.Index {
		w.tombstones = append(w.tombstones, rec.ErasedIndex)
	}
	off := w.entOff + int64(len(w.entBuf))
	var err error
	if w.entBuf, err = appendEncoded(w.entBuf, state, e.LeafRecord, body, e.Findings); err != nil {
		return err
	}
	w.leafBuf = append(w.leafBuf, h[:]...)
	w.leafBuf = binary.BigEndian.AppendUint64(w.leafBuf, uint64(off))
	if err := w.rng.Append(h[:], nil); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	w.next++
	if len(w.entBuf) > 4<<20 {
		return w.flush()
	}
	return nil
}

// meet compares the tree so far with a checkpoint of its size.
func (w *writer) meet(cp *verifier.Checkpoint, seq uint64) error {
	if w.rng.End() != cp.Size {
		return nil
	}
	root, err := w.rng.GetRootHash(nil)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if [32]byte(root) != cp.Hash {
		return &Alarm{Kind: monitor.Fork, Detail: fmt.Sprintf("kept checkpoint %d (size %d) signs root %x; the leaves served give %x: not an extension of the copy's verified tree", seq, cp.Size, cp.Hash[:8], root[:8]), At: time.Now()}
	}
	return nil
}

// flush writes the buffers beyond the committed end (not yet synced).
func (w *writer) flush() error {
	if _, err := w.x.entries.WriteAt(w.entBuf, w.entOff); err != nil {
		return fmt.Errorf("index: writing entries: %w", err)
	}
	if _, err := w.x.leaves.WriteAt(w.leafBuf, w.leafOff); err != nil {
		return fmt.Errorf("index: writing leaves: %w", err)
	}
	w.entOff += int64(len(w.entBuf))
	w.leafOff += int64(len(w.leafBuf))
	w.entBuf, w.leafBuf = w.entBuf[:0], w.leafBuf[:0]
	return nil
}

// commit makes [committed size, size) durable and visible: entries and
// leaves synced, the tombstones among them applied and synced, then the
// checkpoints appended and synced. Entries beyond size stay buffered.
func (w *writer) commit(size uint64, cps []audit.StoredCheckpoint, newest *verifier.Checkpoint, onErase func(Erased)) ([]uint64, error) {
	x := w.x
	if w.next != size {
		return nil, fmt.Errorf("index: commit at %d with %d entries read", size, w.next)
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	if err := x.entries.Sync(); err != nil {
		return nil, fmt.Errorf("index: syncing entries: %w", err)
	}
	if err := x.leaves.Sync(); err != nil {
		return nil, fmt.Errorf("index: syncing leaves: %w", err)
	}
	var cpBuf []byte
	for _, c := range cps {
		cpBuf = binary.BigEndian.AppendUint32(cpBuf, uint32(len(c.Note)))
		cpBuf = binary.BigEndian.AppendUint64(cpBuf, c.Seq)
		cpBuf = append(cpBuf, c.Note...)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	// The new entries become readable to the scrub (leafAt, readHeader)
	// before the checkpoint makes them committed.
	oldSize := x.size
	x.size, x.entryEnd = size, w.entOff
	var erased []uint64
	for _, t := range w.tombstones {
		// A body erased within this commit was never in the console's
		// tables; one committed before was.
		if onErase != nil && t < oldSize {
			if e, err := x.entryLocked(t); err == nil && e.Body != nil {
				onErase(Erased{Leaf: t, Body: e.Body})
			}
		}
		did, err := x.scrub(t)
		if err != nil {
			x.size = oldSize
			return nil, err
		}
		if did {
			erased = append(erased, t)
		}
	}
	x.erasedCnt += uint64(len(w.tombstones))
	w.tombstones = nil
	if len(erased) > 0 {
		if err := x.entries.Sync(); err != nil {
			return nil, fmt.Errorf("index: syncing an erasure: %w", err)
		}
	}
	if _, err := x.cps.WriteAt(cpBuf, x.cpsEnd); err != nil {
		x.size = oldSize
		return nil, fmt.Errorf("index: writing checkpoints: %w", err)
	}
	if err := x.cps.Sync(); err != nil {
		x.size = oldSize
		return nil, fmt.Errorf("index: syncing checkpoints: %w", err)
	}
	x.cpsEnd += int64(len(cpBuf))
	x.kept = append(x.kept, cps...)
	x.newest = newest
	x.rng = cloneRange(w.rng)
	return erased, nil
}

// abandon drops what was not committed: the next Follow or Open cuts the
// files back.
func (w *writer) abandon() {
	w.x.mu.Lock()
	defer w.x.mu.Unlock()
	_ = w.x.entries.Truncate(w.x.entryEnd)
	_ = w.x.leaves.Truncate(int64(w.x.size * leafStride))
}

// entryLocked is Entry for a caller holding mu.
func (x *Index) entryLocked(i uint64) (*audit.Entry, error) {
	_, off, err := x.leafAt(i)
	if err != nil {
		return nil, err
	}
	hdr, err := x.readHeader(off)
	if err != nil {
		return nil, err
	}
	b := make([]byte, hdr.total()-entryHeader)
	if _, err := x.entries.ReadAt(b, off+entryHeader); err != nil {
		return nil, fmt.Errorf("index: reading entry %d: %w", i, err)
	}
	return decodeEntry(i, hdr, b)
}

// tileCache holds the level-0 tile of the leaves being checked.
type tileCache struct {
	src  *audit.HTTPSource
	size uint64
	n    uint64
	data []byte
}

func (t *tileCache) hash(ctx context.Context, i uint64) ([32]byte, error) {
	n := i / verifier.TileWidth
	if t.data == nil || t.n != n {
		width := int(min(uint64(verifier.TileWidth), t.size-n*verifier.TileWidth))
		data, err := t.src.LeafTile(ctx, n, width)
		if err != nil {
			return [32]byte{}, fmt.Errorf("index: level-0 tile %d: %w", n, err)
		}
		if len(data) < width*32 {
			return [32]byte{}, &Alarm{Kind: monitor.BadTiles, Detail: fmt.Sprintf("level-0 tile %d has %d hashes, want %d", n, len(data)/32, width), At: time.Now()}
		}
		t.n, t.data = n, data
	}
	off := (i % verifier.TileWidth) * 32
	return [32]byte(t.data[off : off+32]), nil
}

// The entries are fetched in segments, several at once, and handed on in
// order: one request at a time leaves the ledger and this machine idle
// while a page crosses the network and is decoded, and the copy would be
// built slower than the audit (which overlaps the same wait with its
// signature checks) reads the log.
const (
	fetchSegment = 1000
	fetchAhead   = 3
)

// segment is one range of entries being fetched.
type segment struct {
	entries []*audit.Entry
	err     error
	done    chan struct{}
}

// fetchOrdered calls fn for the entries [from, to) in order, fetching up
// to fetchAhead segments ahead.
func fetchOrdered(ctx context.Context, src *audit.HTTPSource, from, to uint64, fn func(*audit.Entry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *segment, fetchAhead)
	go func() {
		defer close(queue)
		for start := from; start < to; start += fetchSegment {
			sg := &segment{done: make(chan struct{})}
			select {
			case queue <- sg:
			case <-ctx.Done():
				return
			}
			go func(start, end uint64) {
				defer close(sg.done)
				sg.err = src.Entries(ctx, start, end, func(e *audit.Entry) error {
					sg.entries = append(sg.entries, e)
					return nil
				})
			}(start, min(start+fetchSegment, to))
		}
	}()
	for sg := range queue {
		select {
		case <-sg.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if sg.err != nil {
			return sg.err
		}
		for _, e := range sg.entries {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// fetchCheckpoints reads the kept checkpoints numbered from fromSeq on,
// all pages, checking that the numbers go up.
func fetchCheckpoints(ctx context.Context, src *audit.HTTPSource, fromSeq uint64) ([]audit.StoredCheckpoint, error) {
	hc := src.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	var out []audit.StoredCheckpoint
	from := fromSeq
	for {
		u := strings.TrimRight(src.URL, "/") + "/v1/checkpoints?" + url.Values{"from": {strconv.FormatUint(from, 10)}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("index: GET /v1/checkpoints: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+src.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("index: GET /v1/checkpoints: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("index: GET /v1/checkpoints: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return nil, fmt.Errorf("%w: GET /v1/checkpoints: %s", audit.ErrUnauthorized, resp.Status)
			}
			return nil, fmt.Errorf("index: GET /v1/checkpoints?from=%d: %s", from, resp.Status)
		}
		var page verifier.CheckpointsResponse
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("index: GET /v1/checkpoints: %w", err)
		}
		for _, c := range page.Checkpoints {
			if c.Seq < fromSeq || (len(out) > 0 && c.Seq <= out[len(out)-1].Seq) {
				return nil, fmt.Errorf("index: GET /v1/checkpoints: checkpoint %d out of order", c.Seq)
			}
			out = append(out, audit.StoredCheckpoint{Seq: c.Seq, Note: []byte(c.Note)})
		}
		if page.Next == nil {
			return out, nil
		}
		if *page.Next <= from || len(page.Checkpoints) == 0 {
			return nil, fmt.Errorf("index: GET /v1/checkpoints: the next page (%d) does not move on from %d", *page.Next, from)
		}
		from = *page.Next
	}
}

// cloneRange copies r: the writer extends its own copy, and the copy's
// tree changes only at a commit.
func cloneRange(r *compact.Range) *compact.Range {
	hs := r.Hashes()
	cp := make([][]byte, len(hs))
	for i, h := range hs {
		cp[i] = append([]byte(nil), h...)
	}
	out, err := rangeFactory.NewRange(r.Begin(), r.End(), cp)
	if err != nil {
		panic(err) // the hashes are r's own
	}
	return out
}
