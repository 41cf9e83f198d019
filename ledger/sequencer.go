package ledger

// The sequencer: the one goroutine that changes the tree, as five named
// stages and one place that fails every waiter.
//
//	run          the loop: waits for a request, the commit in flight, the
//	             idle re-cosign or Close; hands every stop to fail
//	collect      takes a batch of queued requests (size and age)
//	prepare      on every core: envelope hashes, duplicate lookups,
//	             findings, index keys (lookupEvents)
//	assign       in submission order: duplicate decisions, leaf indices,
//	             tree appends, refusals recorded
//	sealBatch    envelope bodies (encrypted), index entries, then seal: the
//	             tiles and the signed checkpoint; the whole batch decided
//	commitBatch  finish: Store.Commit with Sync, the replicas, the head
//	             published, and then the waiters told; in line, or beside
//	             the sequencer (finishAsync)
//
// Nothing is durable before commitBatch: a crash before it loses the batch
// as a whole (Open drops the envelopes a large batch wrote ahead), and no
// waiter has been told, so ingest has acked nothing of it and JetStream
// redelivers it. (With a Merkle backend seal commits the batch as pending,
// without its checkpoint, before it signs; Open finishes such a batch.)
//
// fail is the only place that tells a waiter of an error: the batch being
// worked on, the batch whose commit ran beside the sequencer and failed, and
// every request still queued all get the error there, once, after the commit
// in flight is over.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// run is the sequencer: the only goroutine that changes the tree. It runs
// the loop until it stops and then hands the error, and the batch whose
// waiters were not told yet, to fail.
func (l *Ledger) run() {
	stage, unanswered, err := l.loop()
	if !errors.Is(err, ErrClosed) {
		l.log.Error("sequencer stopped", "stage", stage, "err", err)
	}
	l.fail(err, unanswered)
}

// loop is the sequencer's loop. It returns only when the sequencer stops:
// with ErrClosed after Close, or with the error of a stage (named for the
// log line) and the requests of the batch it was working on, which nobody
// has told yet.
//
// It commits in groups: it takes every request queued while the previous
// commit ran (up to MaxBatch entries) and commits them at once. Under load
// the requests pile up during each commit and the batches grow by
// themselves, so the fsync is shared by more entries exactly when there are
// more, and nothing waits. Only a batch of fewer than smallBatch entries
// waits up to MaxBatchAge for more (collect).
func (l *Ledger) loop() (stage string, unanswered []*request, err error) {
	if err := l.loadIDFilter(context.Background()); err != nil {
		return "load id filter", nil, err
	}
	var idle <-chan time.Time
	if l.cfg.IdleCosign > 0 {
		ticker := time.NewTicker(l.cfg.IdleCosign)
		defer ticker.Stop()
		idle = ticker.C
	}
	// The timer of a tiny batch's wait, stopped between batches; nil when
	// batches do not wait (MaxBatchAge negative).
	var timer *time.Timer
	if l.cfg.MaxBatchAge > 0 {
		timer = time.NewTimer(l.cfg.MaxBatchAge)
		timer.Stop()
	}
	lastCommit := time.Now()
	batch := make([]*request, 0, 64)
	for {
		var first *request
		select {
		case first = <-l.reqs:
		case <-l.inflightDone():
			// The commit beside the sequencer is over: on failure the
			// sequencer stops (and fail tells that batch's waiters).
			if err := l.waitInflight(); err != nil {
				return "commit", nil, err
			}
			continue
		case <-idle:
			if time.Since(lastCommit) < l.cfg.IdleCosign {
				continue
			}
			if err := l.waitInflight(); err != nil {
				return "commit", nil, err
			}
			// An empty batch: the same tree under a fresh checkpoint
			// (its cosignature time), durable like any other.
			if err := l.commit(context.Background(), &Batch{}); err != nil {
				return "idle re-cosign", nil, err
			}
			lastCommit = time.Now()
			continue
		case <-l.stop:
			return "", nil, ErrClosed
		}
		batch = l.collect(append(batch[:0], first), timer)
		async, err := l.sequence(context.Background(), batch)
		if err != nil {
			return "sequence", batch, err
		}
		lastCommit = time.Now()
		if !async {
			// Committed, replicated and published in line (finish):
			// now, and only now, its submitters are told.
			for _, r := range batch {
				close(r.done)
			}
		}
		clear(batch)
	}
}

// fail is the one place that fails every waiter when the sequencer stops
// with err: the commit in flight is waited for (the store must not be
// closed under it) and, if it failed, its batch gets its error, which is
// also the one to report after Close; then the ledger is marked dead with
// err, and batch (what the sequencer was working on) and every request still
// queued get err. Submit refuses from then on (deadErr).
func (l *Ledger) fail(err error, batch []*request) {
	var failedCommit *inflightCommit
	if ic := l.inflight; ic != nil {
		<-ic.done
		l.inflight = nil
		if ic.err != nil {
			failedCommit = ic
			if errors.Is(err, ErrClosed) {
				err = ic.err
			}
		}
	}
	l.err.Store(&err)
	if failedCommit != nil {
		failRequests(failedCommit.reqs, failedCommit.err)
	}
	failRequests(batch, err)
	close(l.dead)
	for {
		select {
		case r := <-l.reqs:
			r.err = err
			close(r.done)
		default:
			return
		}
	}
}

// failRequests tells each of reqs that it failed with err.
func failRequests(reqs []*request, err error) {
	for _, r := range reqs {
		r.err = err
		close(r.done)
	}
}

// collect is the first stage: it adds to batch (which holds the first
// request) everything that queued up while the previous batch committed, up
// to MaxBatch entries, and lets a tiny batch wait up to MaxBatchAge for
// company (timer, nil for no wait). Nothing is decided or durable after
// it: the requests are only off the queue.
func (l *Ledger) collect(batch []*request, timer *time.Timer) []*request {
	n := 0
	for _, r := range batch {
		n += len(r.subs)
	}
drain:
	for n < l.cfg.MaxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			n += len(r.subs)
		default:
			break drain
		}
	}
	// A tiny batch waits a moment for company: each commit has a fixed
	// cost (two checkpoint signatures, the fsync, rewriting the partial
	// tiles) that a handful of entries would pay alone. Under load the
	// drain above already found more than that, and nothing waits.
	small := min(l.cfg.MaxBatch, smallBatch)
	if timer == nil || n >= small {
		return batch
	}
	timer.Reset(l.cfg.MaxBatchAge)
wait:
	for n < small {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			n += len(r.subs)
		case <-timer.C:
			break wait
		}
	}
	timer.Stop()
	return batch
}

// smallBatch is the batch size below which the sequencer waits up to
// MaxBatchAge for more entries: about where the per-entry work of a batch
// outweighs a commit's fixed cost.
const smallBatch = 64

type inBatch struct {
	idx  uint64
	hash [32]byte
}

// partyEventID is an event id as the ledger keys it: per discloser.
type partyEventID struct{ discloser, id string }

// prepared is what sequence needs to know of one disclosure that does not
// depend on its leaf index, worked out for a whole batch on every core
// before the serial pass (lookupEvents).
type prepared struct {
	// hash is the SHA-256 of the envelope (the leaf record's body hash).
	hash [32]byte
	// logged is where the event id is already logged, if found.
	logged inBatch
	found  bool
	// idKey is the event id index key (per discloser); pseudonym the
	// decoded subject pseudonym (nil if it does not decode).
	idKey     []byte
	pseudonym []byte
	// findings is the JSON of every finding (ingest's and the recording
	// rules'), nil when there is none.
	findings []byte
	// dataKey is the data key id the envelope is sealed under (DataKeys).
	dataKey string
	// idx is the leaf index given in the serial pass; added says it was.
	idx   uint64
	added bool
	// mapKey is the disclosure's subject index map key (index on only);
	// freshKey says it was derived now, and its record is to be kept.
	mapKey   vsi.MapKey
	freshKey bool
}

// batchWork is one batch on its way through the stages after collect: what
// each stage leaves for the next.
type batchWork struct {
	reqs []*request
	// async says the batch is committed beside the sequencer (sequence).
	async bool
	// now is the batch's integration time; cov and covIdx the covenant in
	// force and its leaf index.
	now    time.Time
	cov    *events.Covenant
	covIdx uint64
	// preps is one prepared per submission, in the batch's order.
	preps []prepared
	// b is the Store batch being built.
	b Batch
	// seen are the batch's new event ids; erased the leaves its
	// tombstones erase. (The data keys whose counts changed are a map of
	// sequence's own, passed to the stages: off the heap.)
	seen   map[partyEventID]inBatch
	erased map[uint64]bool
	// answers are the access requests this batch logged an answer for.
	answers map[string]uint64
	// What assign did, for the metrics.
	added, dups, conflicts int
	// index collects the batch's changes to the subject index; dropsDue
	// says erased entries are due to leave it (index.go).
	index    subjectindex.Batch
	dropsDue bool
	// answerProofs are the batch's answer entries that carry index
	// proofs, made at its head (index.go).
	answerProofs []answerProofs
	// indexHead says the batch ends with an index head.
	indexHead bool
}

// sequence runs a collected batch through the stages: prepare, assign,
// seal, commit. Only assign is serial per entry; prepare and the envelope
// bodies of seal run on every core.
//
// A batch of disclosures alone (no tombstones, no records) on a ledger
// without a Merkle backend or replication is committed beside the
// sequencer (async true): the next batch is prepared, signed and sealed
// while this one's Store.Commit runs, and waits only to hand its own
// commit over, so the commits stay in order and one at a time. Anything
// else first waits for the commit in flight and commits in line.
func (l *Ledger) sequence(ctx context.Context, batch []*request) (async bool, err error) {
	start := time.Now()
	w, err := l.prepare(ctx, batch)
	if err != nil {
		return false, err
	}
	changedKeys := map[string]bool{} // data keys whose counts changed
	if err := l.assign(ctx, w, changedKeys); err != nil {
		return false, err
	}
	job, err := l.sealBatch(ctx, w, changedKeys)
	if err != nil {
		return false, err
	}
	if err := l.commitBatch(ctx, w, job); err != nil {
		return false, err
	}
	l.metrics.entries.Add(float64(w.added))
	l.metrics.duplicates.Add(float64(w.dups))
	l.metrics.conflicts.Add(float64(w.conflicts))
	l.metrics.batchSize.Observe(float64(w.added))
	l.metrics.sequenceSeconds.Observe(time.Since(start).Seconds())
	return w.async, nil
}

// prepare is the second stage: it decides whether the batch can be
// committed beside the sequencer (and if not, waits for the commit in
// flight), takes the integration time, and works out on every core what
// each disclosure needs that does not depend on its leaf index
// (lookupEvents). Nothing is changed yet: neither the tree nor the store.
func (l *Ledger) prepare(ctx context.Context, batch []*request) (*batchWork, error) {
	async := l.cfg.Merkle == nil && l.cfg.Replicator == nil
	for _, r := range batch {
		for i := range r.subs {
			if r.subs[i].records != nil || r.subs[i].Tombstone != nil || r.subs[i].Answer != nil {
				// Tombstones read the entries they erase, which may be
				// in the batch in flight.
				async = false
			}
		}
	}
	now := l.integrationTime()
	// Drops of erased entries are decided on the committed store, so a
	// batch with drops is committed in line (and so is every batch whose
	// drop records could change: tombstones already are).
	dropsDue, err := l.indexDropsDue(ctx, now)
	if err != nil {
		return nil, err
	}
	if dropsDue {
		async = false
	}
	if !async {
		if err := l.waitInflight(); err != nil {
			return nil, err
		}
	}
	w := &batchWork{reqs: batch, async: async, now: now, covIdx: l.covIndex,
		cov: l.covenant.Load().Covenant, dropsDue: dropsDue}
	total := 0
	for _, r := range batch {
		total += len(r.subs)
	}
	// Per new entry: the leaf record, the envelope, two index entries and
	// perhaps findings.
	w.b.Ops = make([]Op, 0, 5*total+8)
	if w.preps, err = l.lookupEvents(ctx, batch, w.cov, w.now); err != nil {
		return nil, err
	}
	w.seen = make(map[partyEventID]inBatch, total)
	return w, nil
}

// assign is the third stage, the serial one, in submission order: records
// go into the batch as they are, refusals are recorded, tombstones erase,
// and each disclosure is either a duplicate (of an entry logged, in flight
// or earlier in this batch), an id conflict, refused as occurred in the
// future, or a new leaf: its index is given and its record appended to the
// tree. Each request gets its outcomes. The tree has grown in memory; the
// store has nothing yet (a failure from here on stops the ledger, as the
// tree can no longer be trusted to match the store).
func (l *Ledger) assign(ctx context.Context, w *batchWork, changedKeys map[string]bool) error {
	b, now := &w.b, w.now
	k := 0
	for _, r := range w.reqs {
		r.outcomes = make([]Outcome, len(r.subs))
		for i := range r.subs {
			s := &r.subs[i]
			p := &w.preps[k]
			k++
			if s.records != nil {
				b.Ops = append(b.Ops, s.records...)
				continue
			}
			if s.Reject != nil {
				if err := recordRejection(b, s.Reject); err != nil {
					return err
				}
				r.outcomes[i].Err = &events.RejectError{Reason: s.Reject.Reason, Err: errors.New(s.Reject.Message)}
				continue
			}
			if s.Answer != nil {
				if w.answers == nil {
					w.answers = map[string]uint64{}
				}
				r.outcomes[i] = l.answer(ctx, b, s.Answer, w.answers, w)
				continue
			}
			if s.Tombstone != nil {
				if w.erased == nil {
					w.erased = map[uint64]bool{}
				}
				r.outcomes[i] = l.tombstone(ctx, w, s.Tombstone, changedKeys)
				continue
			}
			d := s.Disclosure
			pid := partyEventID{d.Discloser, d.ID}
			prev, ok := w.seen[pid]
			if !ok && l.inflight != nil {
				prev, ok = l.inflight.ids[pid]
			}
			if !ok && p.found {
				prev, ok = p.logged, true
			}
			if ok {
				if prev.hash == p.hash {
					r.outcomes[i] = Outcome{Index: prev.idx, Duplicate: true}
					w.dups++
				} else {
					re := &events.RejectError{Reason: events.ReasonIDConflict,
						Err: fmt.Errorf("event id already logged at leaf %d with other bytes; the first one stands", prev.idx)}
					r.outcomes[i] = Outcome{Index: prev.idx, Err: re}
					// Recorded like any refusal, with the hash of these
					// bytes, so that a status request about them is
					// answered (rare: no cost to the common path).
					if err := recordRejection(b, &Rejection{EventID: d.ID, Party: d.Discloser, Reason: re.Reason,
						Message: re.Error(), At: now, SHA256: hex.EncodeToString(p.hash[:])}); err != nil {
						return err
					}
					w.conflicts++
				}
				continue
			}
			// Refused only here, where the time of recording is known,
			// and after the duplicate check: a retry of an event logged
			// before this rule existed still gets its receipt.
			if err := events.CheckOccurredInFuture(d, now, l.cfg.FutureSkew); err != nil {
				var re *events.RejectError
				if !errors.As(err, &re) {
					return err
				}
				if err := recordRejection(b, &Rejection{EventID: d.ID, Party: d.Discloser, Reason: re.Reason,
					Message: re.Detail(), At: now, SHA256: hex.EncodeToString(p.hash[:])}); err != nil {
					return err
				}
				r.outcomes[i].Err = err
				continue
			}
			idx := l.tree.size()
			rec := verifier.LeafRecord{Type: verifier.EntryDisclosure, BodyHash: p.hash, IntegratedAt: now, CovenantIndex: w.covIdx}
			if err := l.addLeaf(b, idx, &rec, nil); err != nil {
				return err
			}
			if w.added == 0 {
				crashpoint.Hit(crashpoint.MidBatch)
			}
			if p.dataKey != "" {
				l.keyCounts[p.dataKey]++
				changedKeys[p.dataKey] = true
			}
			p.idx, p.added = idx, true
			if l.sidx != nil {
				w.index.Append(p.mapKey, idx)
				if p.freshKey {
					d := s.Disclosure
					ik, _ := vsi.DeriveIndexKey(string(d.Subject.IDType), d.Subject.KeyID, d.Subject.Pseudonym)
					b.Set(mapKeyRecordKey(ik, d.Discloser), bytes.Clone(p.mapKey[:]))
					// Written once: later events of the pair read
					// the cache as persisted. (A failed commit stops
					// the ledger, cache and all.)
					l.sidx.keys.put(pairKey{ik, d.Discloser}, cachedKey{p.mapKey, true})
				}
			}
			l.ids.add(p.idKey)
			w.seen[pid] = inBatch{idx, p.hash}
			r.outcomes[i] = Outcome{Index: idx}
			w.added++
		}
	}
	// The index head is the batch's last leaf: its root covers every
	// entry before it.
	return l.finishIndex(ctx, w)
}

// sealBatch is the fourth stage: the envelopes of the new leaves (encrypted
// on every core with DataKeys), written ahead where the store can, their
// index entries, the changed data key counts, and then seal: the changed
// tiles and the signed checkpoint. After it the batch is wholly decided and
// the next checkpoint number taken; still nothing is durable.
func (l *Ledger) sealBatch(ctx context.Context, w *batchWork, changedKeys map[string]bool) (*commitJob, error) {
	bodies, err := l.sealBodies(w.reqs, w.preps)
	if err != nil {
		return nil, err
	}
	b := &w.b
	// One buffer for every key of the batch (the Store copies them).
	keys := make([]byte, 0, w.added*(9+8+41+9))
	k := 0
	for _, r := range w.reqs {
		for i := range r.subs {
			p := &w.preps[k]
			k++
			if !p.added {
				continue
			}
			body := r.subs[i].Envelope
			if bodies != nil {
				body = bodies[k-1]
			}
			keys = appendU64Key(keys, tagEntry, p.idx)
			// The envelope of a new leaf is most of the batch's bytes;
			// the store may write it ahead of the batch (recover drops
			// what a crash left of that beyond the tree).
			b.SetAhead(lastKey(keys, 9), body)
			keys = l.addIndices(b, keys, p.idx, p)
			keys = appendLDVIndex(b, keys, p.idx, r.subs[i].Disclosure)
		}
	}
	for id := range changedKeys {
		b.Set(keyCountKey(id), binary.BigEndian.AppendUint64(nil, l.keyCounts[id]))
	}
	job, err := l.seal(ctx, b)
	if err != nil {
		return nil, err
	}
	if w.indexHead {
		job.indexHeads = 1
	}
	return job, nil
}

// commitBatch is the last stage: the sealed batch is committed in line
// (finish), or beside the sequencer (finishAsync) when w.async. The crash
// ordering is finish's: the durable commit (Store.Commit with Sync), then
// the replicas' quorum, then the new head published; and only then are the
// submitters told (by run, or by the async commit's goroutine), so ingest
// acks only what is durable.
func (l *Ledger) commitBatch(ctx context.Context, w *batchWork, job *commitJob) error {
	if w.async {
		return l.finishAsync(ctx, job, w.reqs, w.seen)
	}
	return l.finish(ctx, job)
}

// commit seals b (tiles, checkpoint) and commits it in line: the empty
// batch of an idle re-cosign, a covenant version, a Merkle backend's
// pending batch at Open.
func (l *Ledger) commit(ctx context.Context, b *Batch) error {
	job, err := l.seal(ctx, b)
	if err != nil {
		return err
	}
	return l.finish(ctx, job)
}

// commitJob is a sealed batch: everything of it is decided, the store has
// not got it yet.
type commitJob struct {
	b    *Batch
	head *Head
	// indexHeads is how many index heads the batch holds (0 or 1).
	indexHeads int
}

// seal adds the changed tiles and a new signed checkpoint to b (with a
// Merkle backend after the backend has integrated the batch's leaves) and
// returns what finish must commit.
func (l *Ledger) seal(ctx context.Context, b *Batch) (*commitJob, error) {
	l.tree.takeDirty(func(level int, index uint64, data []byte) {
		b.Set(tileKey(level, index), data)
	})
	root, err := l.tree.root()
	if err != nil {
		return nil, err
	}
	size := l.tree.size()
	var first uint64 // the head's size: where this batch's leaves start
	if h := l.head.Load(); h != nil {
		first = h.Size
	}
	if size < first {
		return nil, fmt.Errorf("ledger: tree would shrink from %d to %d: %w", first, size, ErrCorrupt)
	}
	// With a Merkle backend, steps (i) to (iii) of merkle.go: b without a
	// checkpoint is committed as pending, the backend integrates its
	// leaves, and the roots must agree. Then only the checkpoint (and the
	// replication state) is left to commit, below.
	pendingOps := 0
	if l.cfg.Merkle != nil && size > first {
		if err := l.integratePending(ctx, b, first, size, root); err != nil {
			return nil, err
		}
		pendingOps = b.Len()
	}
	note, err := l.cfg.Signer.Sign(l.origin, size, root)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	crashpoint.Hit(crashpoint.DuringSigning)
	seq := l.cpSeq + 1
	b.Set(u64Key(tagCheckpoint, seq), note)
	b.Set(metaCheckpointSeq, binary.BigEndian.AppendUint64(nil, seq))
	// With replication the batch also carries its encoded form (the
	// outbox) and its stream position, durable together with it.
	if err := l.prepareReplica(ctx, b, seq, size); err != nil {
		return nil, err
	}
	// The next batch signs the next checkpoint, whether or not this one
	// is committed yet (a failed commit stops the ledger).
	l.cpSeq = seq
	// (iv) The checkpoint. The Replicator above saw the whole batch;
	// with a backend its pending part is durable already.
	toCommit := b
	if pendingOps > 0 {
		toCommit = &Batch{Ops: b.Ops[pendingOps:]}
	}
	return &commitJob{b: toCommit, head: &Head{Size: size, Root: root, Note: note, Seq: seq}}, nil
}

// finish commits a sealed batch and then publishes its head.
func (l *Ledger) finish(ctx context.Context, job *commitJob) error {
	start := time.Now()
	if err := l.store.Commit(ctx, job.b); err != nil {
		return fmt.Errorf("couldn't commit batch (fatal, the ledger stops): %w", err)
	}
	crashpoint.Hit(crashpoint.AfterStoreCommit)
	l.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	// Durable here; now the replicas' quorum must have it before anyone
	// sees the new head or is told of the batch.
	if err := l.replicate(ctx); err != nil {
		return err
	}
	h := job.head
	l.indexHeads.Add(uint64(job.indexHeads))
	l.head.Store(h)
	l.metrics.observeHead(h, l.cfg.Now)
	l.notifyMu.Lock()
	close(l.notify)
	l.notify = make(chan struct{})
	l.notifyMu.Unlock()
	return nil
}

// inflightCommit is a batch being committed while the sequencer prepares
// the next one.
type inflightCommit struct {
	// ids are the batch's new event ids, which the store does not show
	// until the commit is over: the next batch's duplicate check looks
	// here too.
	ids map[partyEventID]inBatch
	// reqs are the batch's requests: told by the commit's goroutine when
	// it succeeds, by fail when it failed.
	reqs []*request
	// done is closed when the commit is over; err is its error then.
	done chan struct{}
	err  error
}

// finishAsync waits for the commit in flight, then commits job on a
// goroutine of its own, which tells the requests of batch when the commit
// succeeded (a failure the sequencer sees in waitInflight, and fail tells
// them). ids are the batch's new event ids, for the next batch's duplicate
// check.
func (l *Ledger) finishAsync(ctx context.Context, job *commitJob, batch []*request, ids map[partyEventID]inBatch) error {
	if err := l.waitInflight(); err != nil {
		return err
	}
	ic := &inflightCommit{ids: ids, reqs: slices.Clone(batch), done: make(chan struct{})}
	l.inflight = ic
	go func() {
		ic.err = l.finish(ctx, job)
		if ic.err == nil {
			// Durable, replicated (none here) and published: now
			// its submitters are told.
			for _, r := range ic.reqs {
				close(r.done)
			}
		}
		close(ic.done)
	}()
	return nil
}

// waitInflight waits for the commit in flight, if any, and returns its
// error. A failed commit stays l.inflight, for fail to tell its requests.
func (l *Ledger) waitInflight() error {
	ic := l.inflight
	if ic == nil {
		return nil
	}
	<-ic.done
	if ic.err != nil {
		return ic.err
	}
	l.inflight = nil
	return nil
}

// inflightDone is the done channel of the commit in flight, or nil.
func (l *Ledger) inflightDone() <-chan struct{} {
	if l.inflight == nil {
		return nil
	}
	return l.inflight.done
}

// recordRejection adds the status record of a refusal to b. A refusal
// without a readable id has nothing to answer a status request for; the
// party learns of it on its rejections stream.
func recordRejection(b *Batch, rej *Rejection) error {
	if rej.EventID == "" {
		return nil
	}
	v, err := json.Marshal(rej)
	if err != nil {
		return fmt.Errorf("couldn't encode rejection: %w", err)
	}
	b.Set(partyIDKey(tagRejection, rej.Party, rej.EventID), v)
	return nil
}

// sealBodies encrypts the envelopes of a batch's new entries under their
// data keys (on every core: AES-GCM and a random nonce each), indexed like
// preps; nil when the ledger stores envelopes in the clear.
func (l *Ledger) sealBodies(batch []*request, preps []prepared) ([][]byte, error) {
	if l.cfg.DataKeys == nil {
		return nil, nil
	}
	envs := make([][]byte, 0, len(preps))
	for _, r := range batch {
		for i := range r.subs {
			envs = append(envs, r.subs[i].Envelope)
		}
	}
	bodies := make([][]byte, len(preps))
	errs := make([]error, len(preps))
	parallel.For(len(preps), 0, 64, func(i int) {
		if p := &preps[i]; p.added {
			bodies[i], errs[i] = l.cfg.DataKeys.seal(p.dataKey, p.idx, envs[i])
			if errs[i] != nil {
				errs[i] = fmt.Errorf("couldn't encrypt envelope %d: %w", p.idx, errs[i])
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return bodies, nil
}

// addIndices adds the index entries of new leaf idx to b, their keys
// appended to the batch's key buffer, which it returns.
func (l *Ledger) addIndices(b *Batch, keys []byte, idx uint64, p *prepared) []byte {
	keys = binary.BigEndian.AppendUint64(keys, idx)
	b.Set(p.idKey, lastKey(keys, 8))
	if p.pseudonym != nil {
		keys = appendSubjectKey(keys, p.pseudonym, idx)
		b.Set(lastKey(keys, 1+len(p.pseudonym)+8), nil)
	}
	if p.findings != nil {
		keys = appendU64Key(keys, tagFindings, idx)
		b.Set(lastKey(keys, 9), p.findings)
	}
	return keys
}

// lookupEvents works out, on every core, what sequence needs of each
// submission of a batch that does not depend on its leaf index (see
// prepared), in the batch's order: above all whether its event id is
// already logged (nearly always not). The lookups are store reads of
// committed state, which nothing changes while the sequencer works on the
// batch (it is the only writer of these keys and commits only at the end).
// The id filter (idfilter.go) spares nearly all of them.
func (l *Ledger) lookupEvents(ctx context.Context, batch []*request, cov *events.Covenant, now time.Time) ([]prepared, error) {
	var subs []*Submission
	for _, r := range batch {
		for i := range r.subs {
			subs = append(subs, &r.subs[i])
		}
	}
	preps := make([]prepared, len(subs))
	errs := make([]error, len(subs))
	parallel.For(len(subs), 0, 64, func(i int) {
		s := subs[i]
		if s.Reject != nil || s.Tombstone != nil || s.Answer != nil || s.Disclosure == nil {
			return
		}
		d := s.Disclosure
		p := &preps[i]
		p.hash = sha256.Sum256(s.Envelope)
		p.idKey = partyIDKey(tagEventID, d.Discloser, d.ID)
		// Nearly every id is new, and the filter says so without a
		// store read; only a "perhaps" is looked up. An id reserved for
		// every party (tagReservedID) is looked up too, on the stores
		// that have any.
		if l.ids.mayContain(p.idKey) {
			idx, h, err := l.lookupEventKey(ctx, p.idKey)
			switch {
			case err == nil:
				p.logged, p.found = inBatch{idx, h}, true
			case !errors.Is(err, ErrNotFound):
				errs[i] = err
				return
			}
		}
		if !p.found && l.reservedIDs > 0 {
			var kb [17]byte
			if key := appendEventIDKey(kb[:0], tagReservedID, d.ID); l.ids.mayContain(key) {
				idx, h, err := l.lookupEventKey(ctx, key)
				switch {
				case err == nil:
					p.logged, p.found = inBatch{idx, h}, true
				case !errors.Is(err, ErrNotFound):
					errs[i] = err
					return
				}
			}
		}
		if ps, err := decodeHex32(d.Subject.Pseudonym); err == nil {
			p.pseudonym = ps
		}
		// The recording-time rules need the integration time, which
		// only the sequencer knows.
		findings := append(s.Findings[:len(s.Findings):len(s.Findings)], cov.CheckRecording(d, now)...)
		if len(findings) > 0 {
			if v, err := json.Marshal(findings); err == nil {
				p.findings = v
			}
		}
		if l.cfg.DataKeys != nil {
			p.dataKey = dataKeyID(cov.RetentionDaysFor(d.Categories), now)
		}
		if l.sidx != nil {
			// The VRF evaluation is the costly part of the index
			// (about 130 µs, cached per child and party): here, on
			// every core, not in the serial pass.
			if p.mapKey, p.freshKey, errs[i] = l.lookupMapKey(ctx, d); errs[i] != nil {
				return
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return preps, nil
}

// lookupEventKey is lookupEvent by the event id index key.
func (l *Ledger) lookupEventKey(ctx context.Context, key []byte) (uint64, [32]byte, error) {
	v, err := l.store.Get(ctx, key)
	if err != nil {
		return 0, [32]byte{}, err
	}
	if len(v) != 8 {
		return 0, [32]byte{}, fmt.Errorf("event index entry: %w", ErrCorrupt)
	}
	idx := binary.BigEndian.Uint64(v)
	rec, err := l.LeafRecord(ctx, idx)
	if err != nil {
		return 0, [32]byte{}, err
	}
	return idx, rec.BodyHash, nil
}
