package ledger

// The subject index in the sequencer (issue 22, docs/subject-index.md).
//
// When Config.IndexVRF is set, every disclosure is appended to the list of
// (its child's index key, its discloser) and every erasure marks the entry
// erased with its tombstone; the covenant's notice period after the
// tombstone, the next batch drops it. A batch that changes the map ends
// with an index head entry (type 5) stating the new root over every entry
// before it. The map's writes, the head and the drop schedule go into the
// batch's one Store commit with its entries and checkpoint: a crash leaves
// all or none, and Open checks the stored index against the last head.
//
// The index's records live in the store under tagIndex; the head's leaf
// index and root under metaIndexHead. Only the sequencer writes them. A
// batch committed beside the sequencer (finishAsync) is not yet readable
// when the next batch updates the map, so the sequencer reads the index
// through an overlay holding the writes of the last batch that changed it
// (indexReader): the batch before that one is always committed by then,
// since a commit waits for the one in flight before it starts.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// Store key tags and meta keys of the subject index.
const (
	// tagIndex prefixes the map's lists and tree nodes (ledger/subjectindex).
	tagIndex = 'g'
	// tagIndexDrop || keep-until (Unix ms) || erased leaf -> map key: an
	// erased entry to drop from its list once its notice period is over.
	tagIndexDrop = 'h'
)

var (
	// metaIndexHead is the last index head: its leaf index and root.
	metaIndexHead = []byte("mindex-head")
	// metaIndexBuilt is how far the build over an existing log got (the
	// next leaf to read), while it runs (buildIndex).
	metaIndexBuilt = []byte("mindex-built")
	// metaIndexFrom is the heads' erasures_from: the tree size the first
	// build covered (absent: 0).
	metaIndexFrom = []byte("mindex-from")
)

// tagAnswerIndex || request id -> the index proofs of an answer entry,
// made at the index head of the answer's batch (answerIndexRecord).
const tagAnswerIndex = 'j'

// IndexProofRequest names one list an answer entry must prove: the child
// by one pseudonym key version, at one party.
type IndexProofRequest struct {
	IDType, KeyID, Pseudonym, Party string
}

// answerIndexRecord is what the ledger keeps of an answer's index proofs.
type answerIndexRecord struct {
	// Head is the leaf of the index head the proofs are against.
	Head   uint64                      `json:"head"`
	Proofs []verifier.BundleIndexProof `json:"proofs"`
}

// AnswerIndexProofs returns the index head and the index proofs made for
// an access request's answer entry (AnswerRequest.IndexProofs), or
// ErrNotFound (an answer logged without the index, or erased).
func (l *Ledger) AnswerIndexProofs(ctx context.Context, requestID string) (uint64, []verifier.BundleIndexProof, error) {
	v, err := l.store.Get(ctx, answerIndexKey(requestID))
	if err != nil {
		return 0, nil, err
	}
	var r answerIndexRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return 0, nil, fmt.Errorf("index proofs of request %s: %w", requestID, errors.Join(err, ErrCorrupt))
	}
	return r.Head, r.Proofs, nil
}

func answerIndexKey(requestID string) []byte { return append([]byte{tagAnswerIndex}, requestID...) }

// subjectIndex is the ledger's state of the subject index; nil when the
// index is off. Owned by the sequencer (and by Open before it starts).
type subjectIndex struct {
	x   *subjectindex.Index
	vrf *subjectindex.VRFKey
	// overlay holds the writes of the last batch that changed the map,
	// by store key; a nil value is a deletion.
	overlay map[string][]byte
	// headLeaf and headRoot are the last index head's; haveHead says
	// there is one.
	headLeaf uint64
	headRoot vsi.Hash
	haveHead bool
	// erasuresFrom is the heads' erasures_from (metaIndexFrom).
	erasuresFrom uint64
	// top caches the tree's upper levels for Apply.
	top *topCache
	// keys caches map keys (lookupMapKey).
	keys mapKeyCache
}

// indexReader reads the index through the overlay, then (for the
// sequencer) the cache of the tree's top, then the store.
type indexReader struct {
	l       *Ledger
	overlay map[string][]byte
	top     *topCache
}

func (r indexReader) Lookup(ctx context.Context, key []byte) ([]byte, bool, error) {
	if v, ok := r.overlay[string(key)]; ok {
		return v, v != nil, nil
	}
	cacheable := r.top != nil && r.top.holds(key)
	if cacheable {
		if v, ok := r.top.m[string(key)]; ok {
			return v, v != nil, nil
		}
	}
	v, err := r.l.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		v, err = nil, nil
	}
	if err != nil {
		return nil, false, err
	}
	if cacheable {
		r.top.m[string(key)] = v
	}
	return v, v != nil, nil
}

// topCache holds the tree's nodes down to topDepth as the sequencer last
// wrote or read them (nil: no node there). Every update reads and
// rewrites the nodes on its keys' paths; the top levels are shared by
// all of them, and here they cost a map look-up instead of a store read.
// Only the sequencer uses it, and it changes it only with the writes of a
// batch it commits (a failed commit stops the ledger, cache and all).
// 2^16 positions at the deepest level: a few MB.
type topCache struct {
	m map[string][]byte
}

// topDepth is the deepest level the cache holds.
const topDepth = 16

// holds reports whether key is a tree node (ledger/subjectindex's layout:
// prefix, 'n', depth as two bytes, path) no deeper than topDepth.
func (c *topCache) holds(key []byte) bool {
	return len(key) >= 4 && key[0] == tagIndex && key[1] == 'n' && int(binary.BigEndian.Uint16(key[2:4])) <= topDepth
}

// apply brings the cache up to a batch's writes.
func (c *topCache) apply(writes []subjectindex.Write) {
	for _, w := range writes {
		if !c.holds(w.Key) {
			continue
		}
		if w.Delete {
			c.m[string(w.Key)] = nil
		} else {
			c.m[string(w.Key)] = w.Value
		}
	}
}

// storeReader reads the committed index only (bundles, checks).
func (l *Ledger) storeReader() indexReader { return indexReader{l: l} }

func newSubjectIndex(vrf *subjectindex.VRFKey) *subjectIndex {
	return &subjectIndex{x: subjectindex.New(subjectindex.Config{Prefix: string([]byte{tagIndex})}), vrf: vrf,
		top: &topCache{m: map[string][]byte{}}}
}

// IndexHeadsCommitted is how many index heads this ledger committed in
// batches of the sequencer since Open: the log's growth less this is what
// its submitters added (the bench counts events so).
func (l *Ledger) IndexHeadsCommitted() uint64 { return l.indexHeads.Load() }

// IndexVRFKey returns the public key of the subject index's map-key VRF,
// or nil when the index is off.
func (l *Ledger) IndexVRFKey() *vsi.VRFPublicKey {
	if l.sidx == nil {
		return nil
	}
	return l.sidx.vrf.Public()
}

// mapKeyOf returns the map key of a disclosure's list.
func (s *subjectIndex) mapKeyOf(d *events.Disclosure) (vsi.MapKey, error) {
	ik, err := vsi.DeriveIndexKey(string(d.Subject.IDType), d.Subject.KeyID, d.Subject.Pseudonym)
	if err != nil {
		return vsi.MapKey{}, fmt.Errorf("subject index key of event %s: %w", d.ID, err)
	}
	return s.vrf.MapKey(ik, d.Discloser)
}

// mapKeyRecordKey is the store key under which the map key of a (child,
// party) pair is kept once derived: tagIndex 'k' SHA-256(VRF input). A VRF
// evaluation costs about 50 µs; a read of this record a few. The record
// says nothing a reader of the store does not learn already: the store's
// pseudonym index links each child's pseudonym to its leaves in the clear.
func mapKeyRecordKey(ik vsi.IndexKey, party string) []byte {
	alpha, _ := vsi.MapKeyInput(ik, party)
	h := sha256.Sum256(alpha)
	return append([]byte{tagIndex, 'k'}, h[:]...)
}

// lookupMapKey returns the map key of a disclosure's list from the
// ledger's cache, the store's map-key records, or the VRF (then fresh is
// true: the caller keeps the record with its batch). Safe on every core.
func (l *Ledger) lookupMapKey(ctx context.Context, d *events.Disclosure) (mk vsi.MapKey, fresh bool, err error) {
	ik, err := vsi.DeriveIndexKey(string(d.Subject.IDType), d.Subject.KeyID, d.Subject.Pseudonym)
	if err != nil {
		return mk, false, fmt.Errorf("subject index key of event %s: %w", d.ID, err)
	}
	if _, err := vsi.MapKeyInput(ik, d.Discloser); err != nil {
		return mk, false, err
	}
	k := pairKey{ik, d.Discloser}
	if c, ok := l.sidx.keys.get(k); ok {
		return c.mk, !c.persisted, nil
	}
	switch b, err := l.store.Get(ctx, mapKeyRecordKey(ik, d.Discloser)); {
	case err == nil && len(b) == 32:
		mk = vsi.MapKey(b)
		l.sidx.keys.put(k, cachedKey{mk, true})
		return mk, false, nil
	case err == nil:
		return mk, false, fmt.Errorf("map key record of %d bytes: %w", len(b), ErrCorrupt)
	case !errors.Is(err, ErrNotFound):
		return mk, false, err
	}
	if mk, err = l.sidx.vrf.MapKey(ik, d.Discloser); err != nil {
		return mk, false, err
	}
	l.sidx.keys.put(k, cachedKey{mk, false})
	return mk, true, nil
}

// WarmIndexKey derives (or reads) the subject index map key of a
// disclosure before it is submitted, so that the sequencer finds it in the
// cache: ingest calls it on its workers, where the VRF evaluation (about
// 50 µs for a child's first entry at a party) overlaps the sequencer's
// commit instead of holding it up. A no-op with the index off; errors are
// left for the sequencer to meet again.
func (l *Ledger) WarmIndexKey(ctx context.Context, d *events.Disclosure) {
	if l.sidx == nil || d == nil {
		return
	}
	l.lookupMapKey(ctx, d)
}

// pairKey names a (child, party) pair of the map-key cache.
type pairKey struct {
	ik    vsi.IndexKey
	party string
}

// cachedKey is a pair's map key, and whether its store record exists.
type cachedKey struct {
	mk        vsi.MapKey
	persisted bool
}

// mapKeyCache keeps recently derived map keys in two generations: when
// the current one is full it becomes the old one, so that a key warmed by
// ingest is still there when the sequencer comes to its event. Safe for
// concurrent use.
type mapKeyCache struct {
	mu       sync.Mutex
	cur, old map[pairKey]cachedKey
}

// mapKeyCacheGen is the size of one generation (about 100 bytes a key).
const mapKeyCacheGen = 1 << 17

func (c *mapKeyCache) get(k pairKey) (cachedKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	return v, ok
}

func (c *mapKeyCache) put(k pairKey, v cachedKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || len(c.cur) >= mapKeyCacheGen {
		c.old, c.cur = c.cur, make(map[pairKey]cachedKey)
	}
	c.cur[k] = v
}

func indexDropKey(keepUntil time.Time, leaf uint64) []byte {
	k := make([]byte, 0, 17)
	k = append(k, tagIndexDrop)
	k = binary.BigEndian.AppendUint64(k, uint64(keepUntil.UnixMilli()))
	return binary.BigEndian.AppendUint64(k, leaf)
}

// indexDropsDue reports whether an erased entry's notice period is over,
// so that the batch must drop it (and so be committed in line: drops are
// decided on the committed store, see prepare).
func (l *Ledger) indexDropsDue(ctx context.Context, now time.Time) (bool, error) {
	if l.sidx == nil {
		return false, nil
	}
	due := false
	end := indexDropKey(now, 0)
	err := l.store.Scan(ctx, []byte{tagIndexDrop}, end, func(_, _ []byte) error {
		due = true
		return errStopScan
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return false, fmt.Errorf("couldn't read the subject index's drop schedule: %w", err)
	}
	return due, nil
}

// indexErase marks an erased disclosure in its list and schedules its
// removal after the covenant's notice period (tombstone, sequencer only).
func (l *Ledger) indexErase(w *batchWork, mk vsi.MapKey, erased, tomb uint64, keepUntil time.Time) {
	w.index.Erase(mk, erased, tomb)
	w.b.Set(indexDropKey(keepUntil, erased), bytes.Clone(mk[:]))
}

// finishIndex is the end of assign when the index is on: the drops that
// are due, then, if the batch changed the map, Apply and the index head
// entry, the last leaf of the batch.
func (l *Ledger) finishIndex(ctx context.Context, w *batchWork) error {
	if l.sidx == nil {
		return nil
	}
	if w.dropsDue {
		end := indexDropKey(w.now, 0)
		err := l.store.Scan(ctx, []byte{tagIndexDrop}, end, func(k, v []byte) error {
			if len(k) != 17 || len(v) != 32 {
				return fmt.Errorf("subject index drop record: %w", ErrCorrupt)
			}
			w.index.Drop(vsi.MapKey(v), binary.BigEndian.Uint64(k[9:]))
			w.b.Delete(bytes.Clone(k))
			return nil
		})
		if err != nil {
			return fmt.Errorf("couldn't read the subject index's drop schedule: %w", err)
		}
	}
	// An answer entry is followed by a head in its own batch, whose
	// proofs it carries (answerProofs), even when the map is unchanged.
	if w.index.Len() == 0 && len(w.answerProofs) == 0 {
		return nil
	}
	r := indexReader{l: l, overlay: l.sidx.overlay, top: l.sidx.top}
	var root vsi.Hash
	if w.index.Len() > 0 {
		u, err := l.sidx.x.Apply(ctx, r, &w.index)
		if err != nil {
			return fmt.Errorf("couldn't update the subject index: %w", err)
		}
		l.sidx.top.apply(u.Writes)
		crashpoint.Hit(crashpoint.IndexApplied)
		overlay := make(map[string][]byte, len(u.Writes))
		for _, wr := range u.Writes {
			if wr.Delete {
				w.b.Delete(wr.Key)
				overlay[string(wr.Key)] = nil
			} else {
				w.b.Set(wr.Key, wr.Value)
				overlay[string(wr.Key)] = wr.Value
			}
		}
		l.sidx.overlay = overlay
		r.overlay, root = overlay, u.Root
	} else {
		var err error
		if root, err = l.sidx.x.Root(ctx, r); err != nil {
			return err
		}
	}
	idx, err := l.appendIndexHead(&w.b, root, w.now, w.covIdx)
	if err != nil {
		return err
	}
	w.indexHead = true
	l.sidx.headLeaf, l.sidx.headRoot, l.sidx.haveHead = idx, root, true
	for _, a := range w.answerProofs {
		if err := l.proveAnswer(ctx, r, &w.b, idx, a); err != nil {
			return err
		}
	}
	return nil
}

// answerProofs is an answer entry of the batch whose index proofs are to
// be made at the batch's head.
type answerProofs struct {
	requestID string
	reqs      []IndexProofRequest
}

// proveAnswer makes an answer's index proofs at the head at leaf head,
// reading the map as the batch leaves it, and keeps them beside the
// answer in the batch.
func (l *Ledger) proveAnswer(ctx context.Context, r indexReader, b *Batch, head uint64, a answerProofs) error {
	rec := answerIndexRecord{Head: head, Proofs: make([]verifier.BundleIndexProof, 0, len(a.reqs))}
	for _, q := range a.reqs {
		ik, err := vsi.DeriveIndexKey(q.IDType, q.KeyID, q.Pseudonym)
		if err != nil {
			return fmt.Errorf("index proof of request %s: %w", a.requestID, err)
		}
		mk, vrfProof, err := l.sidx.vrf.Prove(ik, q.Party)
		if err != nil {
			return fmt.Errorf("index proof of request %s: %w", a.requestID, err)
		}
		p, list, err := l.sidx.x.Prove(ctx, r, mk)
		if err != nil {
			return fmt.Errorf("index proof of request %s: %w", a.requestID, err)
		}
		pb, err := p.MarshalBinary()
		if err != nil {
			return err
		}
		bp := verifier.BundleIndexProof{Party: q.Party, KeyID: q.KeyID, VRFProof: vrfProof, Proof: pb}
		if list != nil {
			if bp.List, err = list.MarshalBinary(); err != nil {
				return err
			}
		}
		rec.Proofs = append(rec.Proofs, bp)
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b.Set(answerIndexKey(a.requestID), v)
	return nil
}

// appendIndexHead adds the index head entry stating root to b, as the
// next leaf, with the meta record Open checks the index against.
func (l *Ledger) appendIndexHead(b *Batch, root vsi.Hash, now time.Time, covIdx uint64) (uint64, error) {
	idx := l.tree.size()
	body, err := verifier.MarshalIndexHeadBody(verifier.NewIndexHeadBody(l.origin, idx, root, l.sidx.vrf.Public(), l.sidx.erasuresFrom))
	if err != nil {
		return 0, err
	}
	rec := verifier.LeafRecord{Type: verifier.EntryIndexHead, BodyHash: sha256.Sum256(body), IntegratedAt: now, CovenantIndex: covIdx}
	if err := l.addLeaf(b, idx, &rec, body); err != nil {
		return 0, err
	}
	b.Set(metaIndexHead, append(binary.BigEndian.AppendUint64(nil, idx), root[:]...))
	return idx, nil
}

// recoverIndex is Open's part for the index: with a head stored, it checks
// the whole stored index (every node and list, Check) against the head's
// root and the head entry's body; without one, it builds the index over
// the log (buildIndex) and appends the first head.
func (l *Ledger) recoverIndex(ctx context.Context) error {
	if l.sidx == nil {
		return nil
	}
	v, err := l.store.Get(ctx, metaIndexHead)
	if errors.Is(err, ErrNotFound) {
		return l.buildIndex(ctx, 0)
	}
	if err != nil {
		return fmt.Errorf("couldn't read the subject index head: %w", err)
	}
	if len(v) != 40 {
		return fmt.Errorf("subject index head record: %w", ErrCorrupt)
	}
	leaf := binary.BigEndian.Uint64(v)
	var root vsi.Hash
	copy(root[:], v[8:])
	if err := l.loadIndexFrom(ctx); err != nil {
		return err
	}
	start := time.Now()
	got, err := l.sidx.x.Check(ctx, l.storeReader())
	if err != nil {
		return fmt.Errorf("the stored subject index does not check: %w", errors.Join(err, ErrCorrupt))
	}
	if got != root {
		return fmt.Errorf("the stored subject index has root %x but its last head says %x: %w", got[:8], root[:8], ErrCorrupt)
	}
	body, err := l.Entry(ctx, leaf)
	if err != nil {
		return fmt.Errorf("couldn't read index head %d: %w", leaf, err)
	}
	h, err := verifier.ParseIndexHeadBody(body)
	if err != nil || h.TreeSize != leaf || h.RootHash() != root || h.VRFKey != fmt.Sprintf("%x", l.sidx.vrf.Public().Bytes()) || h.ErasuresFrom != l.sidx.erasuresFrom {
		return fmt.Errorf("index head %d does not state the stored index with this ledger's VRF key (a new index-vrf.key?): %w",
			leaf, errors.Join(err, ErrCorrupt))
	}
	l.sidx.headLeaf, l.sidx.headRoot, l.sidx.haveHead = leaf, root, true
	l.log.Info("subject index checked", "index_head", leaf, "seconds", time.Since(start).Seconds())
	// Entries after the last head that the index should hold were logged
	// while it was off (Config.IndexVRF nil): catch up over them.
	for i := leaf + 1; i < l.tree.size(); i++ {
		rec, err := l.LeafRecord(ctx, i)
		if err != nil {
			return fmt.Errorf("couldn't read leaf %d after the last index head: %w", i, err)
		}
		if rec.Type == verifier.EntryDisclosure || rec.Type == verifier.EntryTombstone {
			return l.buildIndex(ctx, leaf+1)
		}
	}
	return nil
}

// buildChunk is how many leaves the build reads per commit.
const buildChunk = 4096

// buildIndex builds the index over every entry the log holds from leaf
// from on, once: in chunks, each committed with how far it got
// (metaIndexBuilt), so that a build cut short resumes where it stopped;
// then appends an index head. Entries erased before the build are not in
// the lists: their envelopes, and with them their children's index keys,
// are gone (the first head's tree size says from where completeness is
// claimed). A catch-up (from > 0) over a tombstone of a disclosure is
// refused for the same reason: the erased entry's list cannot be found.
func (l *Ledger) buildIndex(ctx context.Context, from uint64) error {
	size := l.tree.size()
	next := from
	switch v, err := l.store.Get(ctx, metaIndexBuilt); {
	case err == nil && len(v) == 8:
		next = binary.BigEndian.Uint64(v)
	case err == nil:
		return fmt.Errorf("subject index build record: %w", ErrCorrupt)
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("couldn't read the subject index build record: %w", err)
	}
	if next > 0 || size > 1 {
		l.log.Info("building the subject index over the existing log", "from_leaf", next, "tree_size", size)
	}
	if from == 0 {
		// Erasures before now are in no list: the heads say so.
		if err := l.loadIndexFrom(ctx); err != nil {
			return err
		}
		if _, err := l.store.Get(ctx, metaIndexFrom); errors.Is(err, ErrNotFound) && size > 1 {
			l.sidx.erasuresFrom = size
			var b Batch
			b.Set(metaIndexFrom, binary.BigEndian.AppendUint64(nil, size))
			if err := l.store.Commit(ctx, &b); err != nil {
				return fmt.Errorf("couldn't record where the subject index starts: %w", err)
			}
		}
	}
	for next < size {
		end := min(next+buildChunk, size)
		var ib subjectindex.Batch
		for i := next; i < end; i++ {
			rec, err := l.LeafRecord(ctx, i)
			if err != nil {
				return fmt.Errorf("subject index build: %w", err)
			}
			if rec.Type == verifier.EntryTombstone && from > 0 {
				if er, err := l.LeafRecord(ctx, rec.ErasedIndex); err == nil && er.Type == verifier.EntryDisclosure && rec.ErasedIndex < from {
					return fmt.Errorf("leaf %d erased leaf %d while the subject index was off: its list cannot be found; "+
						"remove the index (its records and %s) to rebuild it: %w", i, rec.ErasedIndex, metaIndexHead, ErrCorrupt)
				}
			}
			if rec.Type != verifier.EntryDisclosure {
				continue
			}
			raw, err := l.store.Get(ctx, u64Key(tagEntry, i))
			if errors.Is(err, ErrNotFound) {
				continue // erased before the index existed
			}
			if err != nil {
				return fmt.Errorf("subject index build: envelope %d: %w", i, err)
			}
			d, err := l.openDisclosure(i, raw)
			if err != nil {
				return fmt.Errorf("subject index build: %w", err)
			}
			mk, err := l.sidx.mapKeyOf(d)
			if err != nil {
				return err
			}
			ib.Append(mk, i)
		}
		var b Batch
		if ib.Len() > 0 {
			u, err := l.sidx.x.Apply(ctx, indexReader{l: l, top: l.sidx.top}, &ib)
			if err != nil {
				return fmt.Errorf("subject index build at leaf %d: %w", next, err)
			}
			// Committed just below, before anything reads again.
			l.sidx.top.apply(u.Writes)
			for _, wr := range u.Writes {
				if wr.Delete {
					b.Delete(wr.Key)
				} else {
					b.Set(wr.Key, wr.Value)
				}
			}
		}
		b.Set(metaIndexBuilt, binary.BigEndian.AppendUint64(nil, end))
		if err := l.store.Commit(ctx, &b); err != nil {
			return fmt.Errorf("couldn't commit the subject index build at leaf %d: %w", end, err)
		}
		crashpoint.Hit(crashpoint.IndexBuildChunk)
		next = end
		l.log.Info("subject index build", "leaves_done", end, "tree_size", size)
	}
	root, err := l.sidx.x.Root(ctx, l.storeReader())
	if err != nil {
		return err
	}
	if size == 0 {
		// An empty log: its first batch (the covenant) changes nothing
		// in the map; the first disclosure's batch writes the first head.
		return nil
	}
	var b Batch
	idx, err := l.appendIndexHead(&b, root, l.integrationTime(), l.covIndex)
	if err != nil {
		return err
	}
	b.Delete(metaIndexBuilt)
	if err := l.commit(ctx, &b); err != nil {
		return err
	}
	l.sidx.headLeaf, l.sidx.headRoot, l.sidx.haveHead = idx, root, true
	l.log.Info("subject index built; first index head logged", "index_head", idx)
	return nil
}

// loadIndexFrom reads the heads' erasures_from.
func (l *Ledger) loadIndexFrom(ctx context.Context) error {
	v, err := l.store.Get(ctx, metaIndexFrom)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("couldn't read where the subject index starts: %w", err)
	case len(v) != 8:
		return fmt.Errorf("subject index start record: %w", ErrCorrupt)
	}
	l.sidx.erasuresFrom = binary.BigEndian.Uint64(v)
	return nil
}

// openDisclosure decodes a stored envelope.
func (l *Ledger) openDisclosure(i uint64, raw []byte) (*events.Disclosure, error) {
	plain, err := l.cfg.DataKeys.open(i, raw)
	if err != nil {
		return nil, fmt.Errorf("envelope %d: %w", i, err)
	}
	env, err := events.ParseEnvelope(plain)
	if err != nil {
		return nil, fmt.Errorf("stored envelope %d: %w", i, err)
	}
	d, err := events.DecodeDisclosure(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("stored envelope %d: %w", i, err)
	}
	return d, nil
}

// IndexRecomputation is what RecomputeIndex found.
type IndexRecomputation struct {
	// HeadLeaf and Root are the last index head's leaf index and root.
	HeadLeaf uint64
	Root     vsi.Hash
	// Lists and Items count the map's keys and their items; Erased the
	// items marked erased.
	Lists, Items, Erased int
}

// RecomputeIndex recomputes the last index head's root from the log
// rather than from the stored tree: every disclosure below the head whose
// envelope is stored must be a live item of exactly the list its map key
// names, and nothing else may be live; every erased item must name an
// erased leaf and its tombstone, below the head; then the root of the map
// of those lists' commitments (verifier/subjectindex.RootOf, the
// definition written plainly) must be the head's. The nonces come from the
// stored lists. It reads the store as it is: run it on a ledger that is
// not committing (a test, a standby between batches, a closed store's
// copy), or it may see a batch half way. Errors wrap ErrCorrupt when the
// index differs from the log.
func (l *Ledger) RecomputeIndex(ctx context.Context) (*IndexRecomputation, error) {
	if l.sidx == nil {
		return nil, errors.New("ledger: the subject index is off")
	}
	v, err := l.store.Get(ctx, metaIndexHead)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the subject index head: %w", err)
	}
	if len(v) != 40 {
		return nil, fmt.Errorf("subject index head record: %w", ErrCorrupt)
	}
	out := &IndexRecomputation{HeadLeaf: binary.BigEndian.Uint64(v)}
	copy(out.Root[:], v[8:])
	live := map[vsi.MapKey][]uint64{}
	for i := uint64(0); i < out.HeadLeaf; i++ {
		rec, err := l.LeafRecord(ctx, i)
		if err != nil {
			return nil, err
		}
		if rec.Type != verifier.EntryDisclosure {
			continue
		}
		raw, err := l.store.Get(ctx, u64Key(tagEntry, i))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d, err := l.openDisclosure(i, raw)
		if err != nil {
			return nil, err
		}
		mk, err := l.sidx.mapKeyOf(d)
		if err != nil {
			return nil, err
		}
		live[mk] = append(live[mk], i)
	}
	var leaves []vsi.Leaf
	prefix := []byte{tagIndex, 'l'}
	err = l.store.Scan(ctx, prefix, prefixEnd(prefix), func(k, b []byte) error {
		if len(k) != 2+32 {
			return fmt.Errorf("subject index list key: %w", ErrCorrupt)
		}
		mk := vsi.MapKey(k[2:])
		list, err := vsi.ParseList(b)
		if err != nil {
			return fmt.Errorf("list %x: %w", mk[:8], errors.Join(err, ErrCorrupt))
		}
		want := live[mk]
		delete(live, mk)
		var got []uint64
		for _, it := range list.Items {
			out.Items++
			if !it.Erased {
				got = append(got, it.Leaf)
				continue
			}
			out.Erased++
			tomb, err := l.ErasedBy(ctx, it.Leaf)
			if err != nil || tomb != it.Tombstone || tomb >= out.HeadLeaf {
				return fmt.Errorf("list %x marks leaf %d erased by %d, which the log does not show below the head: %w", mk[:8], it.Leaf, it.Tombstone, ErrCorrupt)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("list %x holds live leaves %v, the log %v: %w", mk[:8], got, want, ErrCorrupt)
		}
		leaves = append(leaves, vsi.Leaf{Key: mk, Value: vsi.CommitmentOf(mk, b)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for mk, want := range live {
		return nil, fmt.Errorf("the log has leaves %v in list %x, which the index does not hold: %w", want, mk[:8], ErrCorrupt)
	}
	root, err := vsi.RootOf(leaves)
	if err != nil {
		return nil, err
	}
	if root != out.Root {
		return nil, fmt.Errorf("the index's lists give root %x, the last head says %x: %w", root[:8], out.Root[:8], ErrCorrupt)
	}
	out.Lists = len(leaves)
	return out, nil
}

// indexReaderSource reads the stored index for the FG's audit
// (audit.IndexSource): the lists and, with the VRF key, the map keys of
// the pairs the audit found in the envelopes, with their proofs (which the
// audit checks under the key the index heads publish).
type indexReaderSource struct {
	store Store
	vrf   *subjectindex.VRFKey
}

// IndexMapKeys implements audit.IndexSource.
func (s indexReaderSource) IndexMapKeys(ctx context.Context, pairs []audit.IndexPair) ([]audit.IndexMapKey, error) {
	out := make([]audit.IndexMapKey, len(pairs))
	errs := make([]error, len(pairs))
	parallel.For(len(pairs), 0, 16, func(i int) {
		p := pairs[i]
		ik, err := vsi.DeriveIndexKey(p.IDType, p.KeyID, p.Pseudonym)
		if err != nil {
			errs[i] = err
			return
		}
		mk, proof, err := s.vrf.Prove(ik, p.Party)
		out[i], errs[i] = audit.IndexMapKey{MapKey: mk, VRFProof: proof}, err
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

// IndexLists implements audit.IndexSource.
func (s indexReaderSource) IndexLists(ctx context.Context, fn func(vsi.MapKey, []byte) error) error {
	prefix := []byte{tagIndex, 'l'}
	return s.store.Scan(ctx, prefix, prefixEnd(prefix), func(k, v []byte) error {
		if len(k) != 2+32 {
			return fmt.Errorf("subject index list key of %d bytes: %w", len(k), ErrCorrupt)
		}
		return fn(vsi.MapKey(k[2:]), bytes.Clone(v))
	})
}

// StoreIndexAuditSource is a StoreAuditSource that also reads the subject
// index (audit.IndexSource), with the ledger's VRF key.
type StoreIndexAuditSource struct {
	*StoreAuditSource
	indexReaderSource
}

// WithIndex returns s reading the subject index too, with the ledger's
// VRF key (DIR/index-vrf.key): the audit then recomputes the last index
// head.
func (s *StoreAuditSource) WithIndex(vrf *subjectindex.VRFKey) *StoreIndexAuditSource {
	return &StoreIndexAuditSource{s, indexReaderSource{store: s.store, vrf: vrf}}
}

var (
	_ audit.IndexSource = (*StoreIndexAuditSource)(nil)
	_ audit.IndexSource = (*ledgerIndexAuditSource)(nil)
	_ audit.TileSource  = (*StoreIndexAuditSource)(nil)
)

// ErrIndexOff is returned by the index reads of a ledger without the
// subject index.
var ErrIndexOff = errors.New("ledger: the subject index is off")

// IndexListPage returns up to limit stored lists with a map key after
// after (all when after is nil), in map key order, and the map key to
// read on from (nil on the last page): the FG's read of the index.
func (l *Ledger) IndexListPage(ctx context.Context, after *vsi.MapKey, limit int) ([]verifier.IndexListEntry, *vsi.MapKey, error) {
	if l.sidx == nil {
		return nil, nil, ErrIndexOff
	}
	prefix := []byte{tagIndex, 'l'}
	start := prefix
	if after != nil {
		start = append(append(bytes.Clone(prefix), after[:]...), 0)
	}
	var out []verifier.IndexListEntry
	var next *vsi.MapKey
	err := l.store.Scan(ctx, start, prefixEnd(prefix), func(k, v []byte) error {
		if len(k) != 2+32 {
			return fmt.Errorf("subject index list key of %d bytes: %w", len(k), ErrCorrupt)
		}
		if len(out) == limit {
			var last vsi.MapKey
			hex.Decode(last[:], []byte(out[len(out)-1].MapKey))
			next = &last
			return errStopScan
		}
		out = append(out, verifier.IndexListEntry{MapKey: fmt.Sprintf("%x", k[2:]), List: bytes.Clone(v)})
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, nil, err
	}
	return out, next, nil
}

// IndexMapKeys returns the map keys of pairs with their VRF proofs: the
// FG's read of the index (audit.IndexSource).
func (l *Ledger) IndexMapKeys(ctx context.Context, pairs []audit.IndexPair) ([]audit.IndexMapKey, error) {
	if l.sidx == nil {
		return nil, ErrIndexOff
	}
	return indexReaderSource{store: l.store, vrf: l.sidx.vrf}.IndexMapKeys(ctx, pairs)
}

// checkReplicatedIndexHead checks, on a standby, that an index head a
// replicated batch appends states the root that the batch's index writes,
// over the standby's store, give: the shipped writes and the logged head
// must agree before either is stored. (The whole tree is checked at
// promotion, recoverIndex.)
func (l *Ledger) checkReplicatedIndexHead(ctx context.Context, ops []Op, leaves []Op) error {
	var head uint64
	found := false
	for _, op := range leaves {
		if rec, err := verifier.ParseLeafRecord(op.Value); err == nil && rec.Type == verifier.EntryIndexHead {
			head, found = binary.BigEndian.Uint64(op.Key[1:]), true
		}
	}
	if !found {
		return nil
	}
	overlay := map[string][]byte{}
	var body []byte
	entryKey := u64Key(tagEntry, head)
	for _, op := range ops {
		switch {
		case len(op.Key) > 0 && op.Key[0] == tagIndex:
			if op.Delete {
				overlay[string(op.Key)] = nil
			} else {
				overlay[string(op.Key)] = op.Value
			}
		case bytes.Equal(op.Key, entryKey) && !op.Delete:
			body = op.Value
		}
	}
	h, err := verifier.ParseIndexHeadBody(body)
	if err != nil || h.TreeSize != head {
		return fmt.Errorf("the index head at leaf %d has no valid body: %v", head, err)
	}
	x := subjectindex.New(subjectindex.Config{Prefix: string([]byte{tagIndex})})
	root, err := x.Root(ctx, indexReader{l: l, overlay: overlay})
	if err != nil {
		return fmt.Errorf("the index the batch leaves: %w", err)
	}
	if root != h.RootHash() {
		return fmt.Errorf("the index head at leaf %d states root %x, the batch's index writes give %x", head, rootPrefix(h.RootHash()), root[:8])
	}
	return nil
}

func rootPrefix(h vsi.Hash) []byte { return h[:8] }
