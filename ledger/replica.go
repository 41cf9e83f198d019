package ledger

// Replication: the active ledger hands every committed batch to a
// Replicator (ledger/replication puts it on the JetStream stream SPOOR_LOG);
// a standby ledger, opened with OpenStandby, applies those batches to its
// own Store with Apply and, on failover, becomes the active one with
// Promote. This file holds the seam, the batch's byte format and the
// standby's apply path; it knows nothing of NATS.
//
// The order in the active's commit (see commit in ledger.go):
//
//	encode the batch -> add the encoded parts (the outbox) and the stream
//	position they will end at to the same batch -> Store.Commit (fsync)
//	-> Replicator.Replicate (returns once the quorum has every part)
//	-> publish the head -> tell the submitters (ingest acks, receipts).
//
// The outbox makes a crash between the commit and the publish harmless:
// nobody was told about the batch, and the restart publishes the outbox
// before anything else (ReplicaOutbox). The stream position makes the
// stream the fence: each part is published with the sequence the stream
// must be at, so a second, stale active fails its publish and halts.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/verifier"
)

// Replicator receives each committed batch of the active ledger.
//
// Replicate is called by the sequencer goroutine only, one batch at a time,
// after the batch with its checkpoint is durable in the Store and before the
// new head is published or any submitter is told. It must return nil only
// once every part of out is durably held by the replicated stream at the
// positions out names (and every data key in out.DataKeys before the first
// part). Any error halts the sequencer (fail-stop): the ledger may no longer
// be the active one, and a restart resolves it (ReplicaOutbox).
type Replicator interface {
	Replicate(ctx context.Context, out *ReplicaOut) error
}

// ReplicaOut is one committed batch on its way to the stream.
type ReplicaOut struct {
	// FirstSeq is the stream sequence Parts[0] must get: the stream must
	// hold exactly FirstSeq-1 messages' worth of sequence before it.
	FirstSeq uint64
	// Parts are the encoded parts, in order (ParseReplicaPart reads one).
	Parts [][]byte
	// CheckpointSeq and Size name the checkpoint the batch ends with.
	CheckpointSeq, Size uint64
	// DataKeys are the raw data keys (by id) that the batch's sealed
	// envelopes use and that this ledger has not handed over since it
	// started; a standby needs them to read the envelopes.
	DataKeys map[string][]byte
}

// LastSeq is the stream sequence of the batch's last part.
func (o *ReplicaOut) LastSeq() uint64 { return o.FirstSeq + uint64(len(o.Parts)) - 1 }

// MaxReplicaPart is the largest part the ledger hands to a Replicator, in
// bytes. It stays well under NATS's default max_payload (1 MiB), so no
// server setting has to change for replication.
const MaxReplicaPart = 512 << 10

// Errors of replication.
var (
	// ErrStandby is returned by what only an active ledger does.
	ErrStandby = errors.New("ledger: this ledger is a standby")
	// ErrReplicaMismatch means a replicated batch does not reproduce the
	// checkpoint it carries: the standby stops rather than serve it.
	ErrReplicaMismatch = errors.New("ledger: replicated batch does not match its checkpoint")
	// ErrReplicaOrder means a replicated part arrived out of order.
	ErrReplicaOrder = errors.New("ledger: replicated batch out of order")
)

// Keys of the replication state, in the same batches as the log.
var (
	// metaReplicaSeq: the stream sequence of the last part of the batch
	// that made the current checkpoint (8 bytes).
	metaReplicaSeq = []byte("mreplica-seq")
	// metaReplicaOutbox: the active's last batch as encoded parts, so a
	// restart can publish it when the crash came before the publish.
	metaReplicaOutbox = []byte("mreplica-outbox")
)

// replicaState is the ledger's replication state, owned by the sequencer
// goroutine (or, on a standby, by the goroutine calling Apply).
type replicaState struct {
	seq      atomic.Uint64   // stream sequence of the last part of the last batch
	sentKeys map[string]bool // data keys handed to the Replicator
	out      *ReplicaOut     // prepared by prepareReplica, sent after the commit
	standby  atomic.Bool
	promote  chan struct{} // closed by Promote; the standby's waiting goroutine then runs the sequencer
	loaded   bool
	pending  []ReplicaPart // parts of a batch not yet complete (standby)
	failed   error         // set when Apply found a mismatch; Apply then refuses
}

// Byte format. A batch is encoded as
//
//	"SPRB" version(1) checkpoint-seq(uvarint) size(uvarint) n(uvarint)
//	n x ( kind(1: 0 set, 1 delete) klen(uvarint) key [vlen(uvarint) value] )
//
// and cut into parts, each
//
//	"SPRP" version(1) checkpoint-seq(uvarint) index(uvarint) count(uvarint) chunk
//
// so that a standby can check that the parts it joins belong together.
const (
	replicaBatchMagic = "SPRB"
	replicaPartMagic  = "SPRP"
	replicaVersion    = 1
)

// ReplicaPart is one parsed part of a replicated batch.
type ReplicaPart struct {
	CheckpointSeq uint64
	Index, Count  int
	Chunk         []byte
}

// ParseReplicaPart reads one part.
func ParseReplicaPart(b []byte) (ReplicaPart, error) {
	var p ReplicaPart
	if len(b) < 5 || string(b[:4]) != replicaPartMagic || b[4] != replicaVersion {
		return p, fmt.Errorf("not a replica part (version %d): %w", replicaVersion, ErrReplicaOrder)
	}
	r := b[5:]
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return p, fmt.Errorf("replica part header: %w", ErrReplicaOrder)
		}
		vals[i], r = v, r[n:]
	}
	if vals[2] == 0 || vals[1] >= vals[2] || vals[2] > 1<<20 {
		return p, fmt.Errorf("replica part %d of %d: %w", vals[1], vals[2], ErrReplicaOrder)
	}
	return ReplicaPart{CheckpointSeq: vals[0], Index: int(vals[1]), Count: int(vals[2]), Chunk: r}, nil
}

func encodeReplicaBatch(b *Batch, cpSeq, size uint64) []byte {
	n := 5 + 3*binary.MaxVarintLen64
	for _, op := range b.Ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
	}
	out := make([]byte, 0, n)
	out = append(out, replicaBatchMagic...)
	out = append(out, replicaVersion)
	out = binary.AppendUvarint(out, cpSeq)
	out = binary.AppendUvarint(out, size)
	out = binary.AppendUvarint(out, uint64(len(b.Ops)))
	for _, op := range b.Ops {
		kind := byte(0)
		if op.Delete {
			kind = 1
		}
		out = append(out, kind)
		out = binary.AppendUvarint(out, uint64(len(op.Key)))
		out = append(out, op.Key...)
		if !op.Delete {
			out = binary.AppendUvarint(out, uint64(len(op.Value)))
			out = append(out, op.Value...)
		}
	}
	return out
}

func splitReplicaBatch(enc []byte, cpSeq uint64) [][]byte {
	count := max(1, (len(enc)+MaxReplicaPart-1)/MaxReplicaPart)
	parts := make([][]byte, 0, count)
	for i := range count {
		chunk := enc[i*MaxReplicaPart : min(len(enc), (i+1)*MaxReplicaPart)]
		p := make([]byte, 0, 5+3*binary.MaxVarintLen64+len(chunk))
		p = append(p, replicaPartMagic...)
		p = append(p, replicaVersion)
		p = binary.AppendUvarint(p, cpSeq)
		p = binary.AppendUvarint(p, uint64(i))
		p = binary.AppendUvarint(p, uint64(count))
		parts = append(parts, append(p, chunk...))
	}
	return parts
}

type replicaBatch struct {
	cpSeq, size uint64
	ops         []Op
}

func decodeReplicaBatch(enc []byte) (*replicaBatch, error) {
	bad := func(what string) error { return fmt.Errorf("replicated batch: %s: %w", what, ErrReplicaMismatch) }
	if len(enc) < 5 || string(enc[:4]) != replicaBatchMagic || enc[4] != replicaVersion {
		return nil, bad("not a batch of this version")
	}
	r := enc[5:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	rb := &replicaBatch{}
	var nOps uint64
	var ok1, ok2, ok3 bool
	rb.cpSeq, ok1 = uv()
	rb.size, ok2 = uv()
	nOps, ok3 = uv()
	if !ok1 || !ok2 || !ok3 || nOps > uint64(len(r)) {
		return nil, bad("header")
	}
	rb.ops = make([]Op, 0, nOps)
	for range nOps {
		if len(r) < 1 {
			return nil, bad("truncated")
		}
		kind := r[0]
		r = r[1:]
		kl, ok := uv()
		if !ok || kl > uint64(len(r)) || kind > 1 {
			return nil, bad("key")
		}
		op := Op{Key: r[:kl:kl], Delete: kind == 1}
		r = r[kl:]
		if !op.Delete {
			vl, ok := uv()
			if !ok || vl > uint64(len(r)) {
				return nil, bad("value")
			}
			op.Value = r[:vl:vl]
			r = r[vl:]
		}
		rb.ops = append(rb.ops, op)
	}
	if len(r) != 0 {
		return nil, bad("trailing bytes")
	}
	return rb, nil
}

// loadReplicaState reads the stream position from the store.
func (l *Ledger) loadReplicaState(ctx context.Context) error {
	l.repl.sentKeys = map[string]bool{}
	l.repl.loaded = true
	v, err := l.store.Get(ctx, metaReplicaSeq)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("couldn't read the replication position: %w", err)
	case len(v) != 8:
		return fmt.Errorf("replication position is %d bytes: %w", len(v), ErrCorrupt)
	}
	l.repl.seq.Store(binary.BigEndian.Uint64(v))
	return nil
}

// prepareReplica encodes b (the checkpoint cpSeq of a tree of size size)
// for the Replicator and adds the outbox and the new stream position to b,
// so that both are durable together with the batch. Sequencer only.
func (l *Ledger) prepareReplica(ctx context.Context, b *Batch, cpSeq, size uint64) error {
	if l.cfg.Replicator == nil {
		return nil
	}
	if l.repl.standby.Load() {
		return ErrStandby
	}
	if !l.repl.loaded {
		if err := l.loadReplicaState(ctx); err != nil {
			return err
		}
	}
	out := &ReplicaOut{FirstSeq: l.repl.seq.Load() + 1, CheckpointSeq: cpSeq, Size: size}
	ids := batchKeyIDs(b.Ops)
	for _, id := range ids {
		if l.repl.sentKeys[id] {
			continue
		}
		raw, err := l.cfg.DataKeys.Export(id)
		if err != nil {
			return fmt.Errorf("couldn't read data key %s for the standby: %w", id, err)
		}
		if out.DataKeys == nil {
			out.DataKeys = map[string][]byte{}
		}
		out.DataKeys[id] = raw
	}
	out.Parts = splitReplicaBatch(encodeReplicaBatch(b, cpSeq, size), cpSeq)
	b.Set(metaReplicaSeq, binary.BigEndian.AppendUint64(nil, out.LastSeq()))
	b.Set(metaReplicaOutbox, encodeOutbox(out))
	l.repl.out = out
	return nil
}

// replicate hands the prepared batch to the Replicator (after the commit).
func (l *Ledger) replicate(ctx context.Context) error {
	out := l.repl.out
	if l.cfg.Replicator == nil || out == nil {
		return nil
	}
	l.repl.out = nil
	if err := l.cfg.Replicator.Replicate(ctx, out); err != nil {
		return fmt.Errorf("couldn't replicate checkpoint %d (the batch is durable here but was never acknowledged; this sequencer halts): %w", out.CheckpointSeq, err)
	}
	l.repl.seq.Store(out.LastSeq())
	for id := range out.DataKeys {
		l.repl.sentKeys[id] = true
	}
	return nil
}

// batchKeyIDs lists the data keys that sealed entry bodies in ops use.
func batchKeyIDs(ops []Op) []string {
	var ids []string
	for _, op := range ops {
		if op.Delete || len(op.Key) != 9 || op.Key[0] != tagEntry {
			continue
		}
		if id := sealedKeyID(op.Value); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func encodeOutbox(out *ReplicaOut) []byte {
	b := binary.AppendUvarint(nil, out.FirstSeq)
	b = binary.AppendUvarint(b, out.CheckpointSeq)
	b = binary.AppendUvarint(b, out.Size)
	b = binary.AppendUvarint(b, uint64(len(out.Parts)))
	for _, p := range out.Parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

func decodeOutbox(b []byte) (*ReplicaOut, error) {
	bad := fmt.Errorf("replication outbox: %w", ErrCorrupt)
	var vals [4]uint64
	for i := range vals {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, bad
		}
		vals[i], b = v, b[n:]
	}
	out := &ReplicaOut{FirstSeq: vals[0], CheckpointSeq: vals[1], Size: vals[2]}
	for range vals[3] {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, bad
		}
		out.Parts = append(out.Parts, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	if len(out.Parts) == 0 || len(b) != 0 {
		return nil, bad
	}
	return out, nil
}

// ReplicaPosition is the stream sequence of the last part this store holds
// (applied as a standby or published as the active): the stream must be at
// this sequence for this ledger to publish next.
func (l *Ledger) ReplicaPosition() uint64 { return l.repl.seq.Load() }

// ReplicaOutbox returns the active's last batch as it was prepared for the
// stream (with the data keys it uses), or nil when there is none. After a
// crash between the commit and the publish the stream ends before
// out.LastSeq(); the caller publishes the missing parts before the ledger
// sequences anything (ledger/replication does).
func (l *Ledger) ReplicaOutbox(ctx context.Context) (*ReplicaOut, error) {
	v, err := l.store.Get(ctx, metaReplicaOutbox)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the replication outbox: %w", err)
	}
	out, err := decodeOutbox(v)
	if err != nil {
		return nil, err
	}
	for _, p := range out.Parts {
		if _, err := ParseReplicaPart(p); err != nil {
			return nil, errors.Join(err, ErrCorrupt)
		}
	}
	// The keys are read here, not stored in the outbox: a key never
	// lies in the store beside the envelopes it opens.
	var whole []byte
	for _, p := range out.Parts {
		rp, _ := ParseReplicaPart(p)
		whole = append(whole, rp.Chunk...)
	}
	rb, err := decodeReplicaBatch(whole)
	if err != nil {
		return nil, errors.Join(err, ErrCorrupt)
	}
	for _, id := range batchKeyIDs(rb.ops) {
		raw, err := l.cfg.DataKeys.Export(id)
		if errors.Is(err, ErrKeyDestroyed) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if out.DataKeys == nil {
			out.DataKeys = map[string][]byte{}
		}
		out.DataKeys[id] = raw
	}
	return out, nil
}

// OpenStandby opens the log in cfg.Store as a standby: it recovers and
// checks the store as Open does, serves reads, and changes only through
// Apply, until Promote makes it the active ledger. It does not append
// cfg.Covenant and does not sequence (Submit waits until Promote).
func OpenStandby(ctx context.Context, cfg Config) (*Ledger, error) {
	l, err := newLedger(cfg)
	if err != nil {
		return nil, err
	}
	cfg = l.cfg // with its defaults
	l.repl.standby.Store(true)
	l.repl.promote = make(chan struct{})
	if err := l.recoverStandby(ctx); err != nil {
		return nil, err
	}
	if err := l.migrateEventIDs(ctx); err != nil {
		return nil, err
	}
	if err := l.loadReplicaState(ctx); err != nil {
		return nil, err
	}
	if err := l.loadWitnessed(ctx); err != nil {
		return nil, err
	}
	if h := l.head.Load(); h != nil {
		l.metrics.observeHead(h, cfg.Now)
	}
	go l.awaitPromotion()
	return l, nil
}

// awaitPromotion is the standby's stand-in for the sequencer goroutine:
// it runs the sequencer once Promote is done, or ends the ledger on Close.
func (l *Ledger) awaitPromotion() {
	select {
	case <-l.repl.promote:
		l.run()
	case <-l.stop:
		l.fail(ErrClosed, nil)
	}
}

// recoverStandby is recover, allowing an empty log: a fresh standby has
// no covenant until its first batch arrives.
func (l *Ledger) recoverStandby(ctx context.Context) error {
	if _, err := l.store.Get(ctx, metaCheckpointSeq); errors.Is(err, ErrNotFound) {
		l.tree = newTree()
		return nil
	}
	return l.recover(ctx)
}

// Standby reports whether the ledger is a standby (not yet promoted).
func (l *Ledger) Standby() bool { return l.repl.standby.Load() }

// ApplyResult says what Apply did with a part.
type ApplyResult struct {
	// Applied is true when the part completed a batch that is now
	// committed; Head is then the new head.
	Applied bool
	Head    *Head
	// Discarded counts parts of an incomplete batch that were dropped
	// because a new batch began (the active that published them died
	// before it finished; nobody was told of that batch).
	Discarded int
}

// Apply applies one part of a replicated batch, at stream sequence seq, to
// a standby. Parts are collected until a batch is complete; the batch is
// then checked before anything is stored: its leaf records must extend the
// tree this standby holds, the tiles it carries must be exactly the tiles
// that gives, and its checkpoint must open with the log keys and name the
// resulting size and root. Only then are its operations committed, with
// the new stream position, in one batch. A mismatch returns
// ErrReplicaMismatch and the standby must stop. One goroutine calls Apply.
func (l *Ledger) Apply(ctx context.Context, seq uint64, part []byte) (ApplyResult, error) {
	var res ApplyResult
	if !l.repl.standby.Load() {
		return res, errors.New("ledger: Apply on an active ledger")
	}
	if l.repl.failed != nil {
		return res, l.repl.failed
	}
	if seq != l.repl.seq.Load()+1 {
		return res, fmt.Errorf("part at stream sequence %d, want %d: %w", seq, l.repl.seq.Load()+1, ErrReplicaOrder)
	}
	p, err := ParseReplicaPart(part)
	if err != nil {
		return res, err
	}
	if p.Index == 0 && len(l.repl.pending) > 0 {
		res.Discarded = len(l.repl.pending)
		l.log.Warn("dropping an incomplete replicated batch: a new batch began (its sequencer died before finishing; nobody was told of it)",
			"checkpoint_seq", l.repl.pending[0].CheckpointSeq, "parts", len(l.repl.pending))
		l.repl.pending = nil
	}
	if p.Index != len(l.repl.pending) || (len(l.repl.pending) > 0 &&
		(l.repl.pending[0].CheckpointSeq != p.CheckpointSeq || l.repl.pending[0].Count != p.Count)) {
		return res, fmt.Errorf("part %d of %d of checkpoint %d at stream sequence %d: %w", p.Index, p.Count, p.CheckpointSeq, seq, ErrReplicaOrder)
	}
	p.Chunk = bytes.Clone(p.Chunk)
	l.repl.pending = append(l.repl.pending, p)
	if len(l.repl.pending) < p.Count {
		l.repl.seq.Store(seq)
		return res, nil
	}
	var whole []byte
	for _, q := range l.repl.pending {
		whole = append(whole, q.Chunk...)
	}
	l.repl.pending = nil
	rb, err := decodeReplicaBatch(whole)
	if err != nil {
		return res, err
	}
	h, err := l.applyBatch(ctx, rb, seq)
	if err != nil {
		// The in-memory tree may have taken leaves that were not
		// committed: this standby must not apply anything more.
		l.repl.failed = err
		return res, err
	}
	res.Applied, res.Head = true, h
	return res, nil
}

// ReplicaKeyIDs lists the data keys the sealed envelopes of an encoded
// part use, so that the caller can fetch missing ones before Apply. For a
// part that is not the whole batch it reports what the part holds whole.
func ReplicaKeyIDs(part []byte) []string {
	p, err := ParseReplicaPart(part)
	if err != nil {
		return nil
	}
	if p.Count == 1 {
		if rb, err := decodeReplicaBatch(p.Chunk); err == nil {
			return batchKeyIDs(rb.ops)
		}
		return nil
	}
	// A part of a split batch: look for sealed bodies in its bytes. The
	// key id sits right after the sealed prefix; listing a few extra
	// candidates costs only a look-up.
	var ids []string
	c := p.Chunk
	for i := 0; i+2 < len(c); i++ {
		if c[i] != sealedPrefix {
			continue
		}
		n := int(c[i+1])
		if n < 12 || i+2+n > len(c) {
			continue
		}
		id := string(c[i+2 : i+2+n])
		if dataKeyIDRE.MatchString(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// applyBatch checks a whole replicated batch and commits it.
func (l *Ledger) applyBatch(ctx context.Context, rb *replicaBatch, seq uint64) (*Head, error) {
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %d at stream sequence %d: "+format+": %w",
			append(append([]any{rb.cpSeq, seq}, args...), ErrReplicaMismatch)...)
	}
	if rb.cpSeq != l.cpSeq+1 {
		return nil, mismatch("this standby holds checkpoint %d", l.cpSeq)
	}
	// The leaf records, in index order, extend the tree.
	var leaves []Op
	var note []byte
	tiles := map[tileID][]byte{}
	sawCovenant, sawWitnessed := false, false
	for _, op := range rb.ops {
		switch {
		case op.Delete:
			if len(op.Key) > 0 && (op.Key[0] == tagLeaf || op.Key[0] == tagCheckpoint || op.Key[0] == tagTile) {
				return nil, mismatch("it deletes a leaf record, tile or checkpoint")
			}
		case len(op.Key) == 9 && op.Key[0] == tagLeaf:
			leaves = append(leaves, op)
		case len(op.Key) == 9 && op.Key[0] == tagCheckpoint:
			if binary.BigEndian.Uint64(op.Key[1:]) != rb.cpSeq || note != nil {
				return nil, mismatch("it carries an unexpected checkpoint")
			}
			note = op.Value
		case len(op.Key) == 10 && op.Key[0] == tagTile:
			tiles[tileID{int(op.Key[1]), binary.BigEndian.Uint64(op.Key[2:])}] = op.Value
		case len(op.Key) > 0 && op.Key[0] == tagCovenant:
			sawCovenant = true
		case bytes.Equal(op.Key, metaWitnessed):
			sawWitnessed = true
		case bytes.Equal(op.Key, metaReplicaSeq), bytes.Equal(op.Key, metaReplicaOutbox):
			return nil, mismatch("it carries replication state")
		}
	}
	if note == nil {
		return nil, mismatch("it carries no checkpoint")
	}
	cp, err := verifier.OpenCheckpoint(note, l.cfg.Keys)
	if err != nil {
		return nil, mismatch("its checkpoint does not verify with this log's keys (%w)", err)
	}
	sort.Slice(leaves, func(i, j int) bool { return bytes.Compare(leaves[i].Key, leaves[j].Key) < 0 })
	for _, op := range leaves {
		idx := binary.BigEndian.Uint64(op.Key[1:])
		if idx != l.tree.size() {
			return nil, mismatch("leaf %d does not follow the tree of size %d", idx, l.tree.size())
		}
		h := verifier.LeafHash(op.Value)
		if err := l.tree.append(h[:]); err != nil {
			return nil, err
		}
	}
	root, err := l.tree.root()
	if err != nil {
		return nil, err
	}
	if cp.Size != l.tree.size() || cp.Size != rb.size || cp.Hash != root {
		return nil, mismatch("the checkpoint names size %d root %x, the tree here gives size %d root %x", cp.Size, cp.Hash[:8], l.tree.size(), root[:8])
	}
	var tileErr error
	l.tree.takeDirty(func(level int, index uint64, data []byte) {
		if got, ok := tiles[tileID{level, index}]; !ok || !bytes.Equal(got, data) {
			tileErr = mismatch("tile %d/%d differs from the one the leaves give", level, index)
		}
		delete(tiles, tileID{level, index})
	})
	if tileErr == nil && len(tiles) > 0 {
		tileErr = mismatch("it carries %d tiles the leaves do not change", len(tiles))
	}
	if tileErr != nil {
		return nil, tileErr
	}
	if err := l.checkReplicatedIndexHead(ctx, rb.ops, leaves); err != nil {
		return nil, mismatch("%w", err)
	}
	b := &Batch{Ops: rb.ops}
	b.Set(metaReplicaSeq, binary.BigEndian.AppendUint64(nil, seq))
	if err := l.store.Commit(ctx, b); err != nil {
		return nil, fmt.Errorf("couldn't commit a replicated batch (fatal, the standby stops): %w", err)
	}
	l.repl.seq.Store(seq)
	l.cpSeq = rb.cpSeq
	if len(leaves) > 0 {
		rec, err := verifier.ParseLeafRecord(leaves[len(leaves)-1].Value)
		if err != nil {
			return nil, mismatch("its last leaf record: %w", err)
		}
		l.lastIntegrated = rec.IntegratedAt
	}
	h := &Head{Size: cp.Size, Root: root, Note: note, Seq: rb.cpSeq}
	l.head.Store(h)
	if sawCovenant || l.chain == nil {
		l.chain = nil
		if err := l.loadCovenants(ctx); err != nil {
			return nil, err
		}
	}
	if sawWitnessed {
		// The active stored cosignatures it gathered: this standby serves
		// the same witnessed head.
		if err := l.loadWitnessed(ctx); err != nil {
			return nil, err
		}
	}
	l.metrics.observeHead(h, l.cfg.Now)
	l.notifyMu.Lock()
	close(l.notify)
	l.notify = make(chan struct{})
	l.notifyMu.Unlock()
	return h, nil
}

// SkipIncomplete records that the parts after the standby's last complete
// batch, up to stream sequence last, belong to a batch that will never be
// finished (its sequencer lost the lease); the promoted ledger publishes
// after them. Call it only after taking the lease and applying every part.
func (l *Ledger) SkipIncomplete(last uint64) {
	if last > l.repl.seq.Load() {
		l.repl.seq.Store(last)
	}
	l.repl.pending = nil
}

// Promote makes a standby the active ledger: it appends cfg.Covenant when
// that is new (as Open does) and starts the sequencer, continuing the same
// tree. The caller must hold the lease and have applied every complete
// batch of the stream first. A store without any log is started as Open
// starts an empty one.
func (l *Ledger) Promote(ctx context.Context) error {
	if !l.repl.standby.Load() {
		return errors.New("ledger: Promote on an active ledger")
	}
	if l.repl.failed != nil {
		return fmt.Errorf("ledger: refusing to promote a standby that failed: %w", l.repl.failed)
	}
	select {
	case <-l.dead:
		return l.deadErr()
	default:
	}
	if len(l.repl.pending) > 0 {
		l.log.Warn("dropping an incomplete replicated batch at promotion", "parts", len(l.repl.pending))
		l.repl.pending = nil
	}
	l.repl.standby.Store(false)
	// Batches applied from an active ledger of an older version may have
	// written the old event id index.
	if err := l.migrateEventIDs(ctx); err != nil {
		return err
	}
	if err := l.loadKeyCounts(ctx); err != nil {
		return err
	}
	// The covenant append below is this ledger's first commit as the
	// active one: it goes through the Replicator like every later one.
	if err := l.adoptCovenant(ctx, l.cfg.Covenant); err != nil {
		return err
	}
	// The replicated subject index must be the one its last head states,
	// under this ledger's VRF key (the standby needs the active's
	// index-vrf.key): checked here, as Open checks it, before this ledger
	// writes a head of its own.
	if err := l.recoverIndex(ctx); err != nil {
		return err
	}
	if h := l.head.Load(); h != nil {
		l.metrics.observeHead(h, l.cfg.Now)
	}
	close(l.repl.promote)
	return nil
}

// Export returns the raw bytes of data key id, for a standby.
// ErrKeyDestroyed when the key is gone.
func (k *DataKeys) Export(id string) ([]byte, error) {
	if k == nil {
		return nil, fmt.Errorf("data key %s without a key folder: %w", id, ErrKeyDestroyed)
	}
	if !dataKeyIDRE.MatchString(id) {
		return nil, fmt.Errorf("data key id %q: %w", id, ErrCorrupt)
	}
	raw, err := os.ReadFile(k.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("data key %s: %w", id, ErrKeyDestroyed)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read data key %s: %w", id, err)
	}
	return raw, nil
}

// Has reports whether data key id exists in the folder.
func (k *DataKeys) Has(id string) bool {
	if k == nil || !dataKeyIDRE.MatchString(id) {
		return false
	}
	_, err := os.Stat(k.path(id))
	return err == nil
}

// Import stores data key id received from the active ledger (durably,
// 0600). A key that exists already must have the same bytes.
func (k *DataKeys) Import(id string, raw []byte) error {
	if !dataKeyIDRE.MatchString(id) || len(raw) != 32 {
		return fmt.Errorf("data key %q of %d bytes: %w", id, len(raw), ErrCorrupt)
	}
	if have, err := k.Export(id); err == nil {
		if !bytes.Equal(have, raw) {
			return fmt.Errorf("data key %s differs from the one held here: %w", id, ErrCorrupt)
		}
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := durable.CreateFile(k.path(id), raw, 0o600); err != nil {
		return fmt.Errorf("couldn't store data key %s: %w", id, err)
	}
	return nil
}

// IDs lists the data keys in the folder.
func (k *DataKeys) IDs() ([]string, error) { return k.ids() }

// Destroy removes data key id for good (a standby follows the active's
// destruction of a key this way).
func (k *DataKeys) Destroy(id string) error { return k.destroy(id) }
