// Package ledger is Spoor's log core: the one sequencer that turns opened
// disclosure events into leaves of an RFC 6962 Merkle log, stores them with
// their indices, tiles and a signed, cosigned checkpoint in ONE durable
// batch, and answers reads (tiles, proofs, events) from the Store.
//
// Data flow: ingest (ledger/ingest) opens envelopes against Covenant() and
// calls Submit; the sequencer goroutine, the only writer of the tree, takes
// what is queued (up to Config.MaxBatch, waiting at most Config.MaxBatchAge),
// assigns contiguous leaf indices, appends the leaf records to the tree,
// signs the new checkpoint and commits everything with Store.Commit, which
// fsyncs. Only then are the submitters told (and only then does ingest ack
// the JetStream messages). A failed commit is fatal: every waiter gets the
// error and the ledger stops; Open, on restart, is the recovery path and
// re-checks the stored tree against the last checkpoint.
//
// Two things keep a busy sequencer from waiting on the disk. A batch of
// disclosures is committed on a goroutine of its own while the sequencer
// prepares, signs and seals the next one (finishAsync); commits stay one at
// a time and in order, and the next batch's duplicate check sees the ids
// of the one in flight. And the envelopes of a large batch are written
// ahead of it as a table Pebble ingests (Batch.SetAhead); Open deletes
// those a crash left beyond the tree.
//
// With a Merkle backend (Config.Merkle: Trillian, see merkle.go) a batch is
// committed in two steps instead: first without its checkpoint ("pending"),
// then, once the backend has integrated the same leaf records and its root
// equals the ledger's, with the signed checkpoint; reads stop at the head,
// and Open finishes a batch that crashed in between.
package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/verifier"
)

// CheckpointSigner signs a checkpoint for a tree size and root: the log
// key's signature and the log cosigner's timestamped cosignature.
type CheckpointSigner interface {
	Sign(origin string, size uint64, root [32]byte) ([]byte, error)
}

// Config configures a Ledger. Store, Signer and Keys are required.
type Config struct {
	// Store is where everything is kept.
	Store Store
	// Signer signs checkpoints; Keys verifies them (the same log).
	Signer CheckpointSigner
	Keys   *verifier.LogKeys
	// Covenant is the signed covenant file given at start. On an empty
	// store it must be version 1 and becomes leaf 0; on a store that has
	// a log, a newer version signed by the current administrator key is
	// appended before any event is checked against it, and an equal one
	// is a no-op. Nil means: run on the covenant already logged.
	Covenant *events.SignedCovenant
	// AdminVkey, if set, pins the administrator key of covenant version 1.
	AdminVkey string
	// DataKeys, if set, encrypts every stored envelope under the data key
	// of its retention class and month (see DataKeys); nil stores them in
	// the clear (tests that prove the deletion path on its own).
	DataKeys *DataKeys
	// MaxBatch is the most entries in one commit; 0 means 8192.
	MaxBatch int
	// MaxBatchAge is how long a batch smaller than 64 entries waits for
	// more; 0 means 1ms, negative not at all. The sequencer commits in
	// groups: each batch is everything that queued while the previous one
	// committed (small at a low rate, large under load), and only a tiny
	// one waits, so that a commit's fixed cost is shared.
	MaxBatchAge time.Duration
	// IdleCosign is how often an idle log re-signs its checkpoint with a
	// fresh cosignature time; 0 means one minute, negative disables it.
	IdleCosign time.Duration
	// RetentionBatch is how many tombstones a retention run commits at
	// once; 0 means 1000.
	RetentionBatch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FutureSkew is how far a disclosure's occurred_at may lie after its
	// time of recording (the discloser's clock running ahead); beyond it
	// the event is refused as occurred_in_future. 0 means
	// events.DefaultFutureSkew (5 minutes).
	FutureSkew time.Duration
	// Logger receives the ledger's log lines; nil discards them.
	Logger *slog.Logger
	// Replicator, if set, receives every committed batch before its
	// head is published and its submitters are told (replica.go); an
	// error from it halts the sequencer. Nil: no replication.
	Replicator Replicator
	// Merkle, if set, is a second home of the Merkle tree (Trillian, see
	// ledger/trillianlog) that must reach the ledger's own root before a
	// checkpoint is signed, and that serves the inclusion and consistency
	// proofs (merkle.go). Nil: the tiles in the Store are the only tree,
	// and a batch is one commit.
	Merkle MerkleBackend
}

// Submission is one opened disclosure for the sequencer, or a rejection to
// record (Reject set), so that the status API can answer for it.
type Submission struct {
	// Envelope is the canonical envelope bytes as received.
	Envelope []byte
	// Disclosure is the opened payload (events.Open against Covenant()).
	Disclosure *events.Disclosure
	// Findings are the covenant rules the disclosure breaks.
	Findings []events.Finding
	// Reject, when set, records a refused event instead: EventID and
	// Party say which; nothing enters the log.
	Reject *Rejection
	// Tombstone, when set, erases a disclosure instead: it appends a
	// tombstone entry and deletes the envelope and its indices in the
	// same batch.
	Tombstone *TombstoneRequest

	// records, when set, are store writes beside the log (an access
	// request, a purge of erasure notices) that go through the sequencer
	// only so that they are committed, and replicated, with a batch
	// (commitRecords).
	records []Op
}

// Rejection is the status record of a refused event. It names the event
// and the reason, never the payload; its message quotes nothing the sender
// chose. It is kept per (party, event id): the last refusal of that id on
// that party's subject.
type Rejection struct {
	EventID string        `json:"event_id"`
	Party   string        `json:"party"`
	Reason  events.Reason `json:"reason"`
	Message string        `json:"message"`
	At      time.Time     `json:"at"`
	// SHA256 is the lower-case hex SHA-256 of the refused envelope, so
	// that a status or receipt request about other bytes under the same
	// id is not answered with this refusal. Empty in records written
	// before it was kept.
	SHA256 string `json:"sha256,omitempty"`
}

// Outcome is what became of one Submission.
type Outcome struct {
	// Index is the leaf index of the event (new or earlier).
	Index uint64
	// Duplicate is true when the same bytes were already logged.
	Duplicate bool
	// Err is a *events.RejectError when the sequencer refused the event:
	// ReasonIDConflict when the id was already logged with other bytes,
	// ReasonOccurredInFuture when occurred_at lies beyond FutureSkew
	// after the time of recording (its status is recorded). Nothing
	// enters the log.
	Err error
}

// ErrClosed is returned by Submit after the ledger stopped.
var ErrClosed = errors.New("ledger: closed")

type request struct {
	subs     []Submission
	outcomes []Outcome
	err      error
	done     chan struct{}
}

// Pending is the future of a Submit call.
type Pending struct{ r *request }

// Wait blocks until the submissions are durably committed (or the ledger
// failed) and returns one Outcome per Submission.
func (p *Pending) Wait(ctx context.Context) ([]Outcome, error) {
	select {
	case <-p.r.done:
		return p.r.outcomes, p.r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Head is a committed checkpoint with its parsed fields.
type Head struct {
	Size uint64
	Root [32]byte
	// Note is the signed checkpoint.
	Note []byte
	// Seq is the checkpoint's number among all kept checkpoints.
	Seq uint64
}

// Ledger is an open log. Its methods are safe for concurrent use.
type Ledger struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	origin  string
	metrics *metrics

	reqs chan *request
	stop chan struct{}
	dead chan struct{}
	err  atomic.Pointer[error]

	// Owned by the sequencer goroutine (and by Open before it starts).
	tree           *tree
	unlogged       [][]byte // with Config.Merkle: leaf records beyond the head (merkle.go)
	lastIntegrated time.Time
	covIndex       uint64 // leaf index of the covenant version in force
	chain          *events.Chain
	cpSeq          uint64
	keyCounts      map[string]uint64 // live envelopes per data key
	ids            *idFilter         // event ids that may be logged (idfilter.go)
	reservedIDs    int               // ids reserved for every party (tagReservedID); 0 spares their lookup

	head     atomic.Pointer[Head]
	covenant atomic.Pointer[events.SignedCovenant]
	covIdx   atomic.Uint64
	// chainView is the covenant chain as readers see it (chainview.go).
	chainView atomic.Pointer[ChainView]

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every commit

	fullTiles fullTileCache // node hashes of recently read full tiles (read.go)

	repl replicaState // replication (replica.go); owned like the tree

	// inflight is the batch whose Store.Commit runs beside the sequencer
	// (finishAsync), nil when none; owned by the sequencer.
	inflight *inflightCommit
}

// inflightCommit is a batch being committed while the sequencer prepares
// the next one.
type inflightCommit struct {
	// ids are the batch's new event ids, which the store does not show
	// until the commit is over: the next batch's duplicate check looks
	// here too.
	ids map[partyEventID]inBatch
	// done is closed when the commit is over; err is its error then.
	done chan struct{}
	err  error
}

// Open opens the log in cfg.Store, recovering and checking it, appends
// cfg.Covenant if it is new, and starts the sequencer. It refuses to start
// (ErrCorrupt) when the stored tree does not match the last checkpoint.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	l, err := newLedger(cfg)
	if err != nil {
		return nil, err
	}
	cfg = l.cfg // with its defaults
	if err := l.recover(ctx); err != nil {
		return nil, err
	}
	if err := l.migrateEventIDs(ctx); err != nil {
		return nil, err
	}
	if err := l.loadKeyCounts(ctx); err != nil {
		return nil, err
	}
	// With a Merkle backend: bring it up to the ledger and finish a batch
	// that crashed before its checkpoint, before anything else is logged.
	if err := l.syncBackend(ctx); err != nil {
		return nil, err
	}
	if err := l.adoptCovenant(ctx, cfg.Covenant); err != nil {
		return nil, err
	}
	l.metrics.observeHead(l.head.Load(), cfg.Now)
	go l.run()
	return l, nil
}

// newLedger checks cfg, fills in its defaults and makes the Ledger that
// Open and OpenStandby then recover from the store.
func newLedger(cfg Config) (*Ledger, error) {
	if cfg.Store == nil || cfg.Signer == nil || cfg.Keys == nil {
		return nil, errors.New("ledger: Config needs Store, Signer and Keys")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 8192
	}
	if cfg.MaxBatchAge == 0 {
		cfg.MaxBatchAge = time.Millisecond
	}
	if cfg.IdleCosign == 0 {
		cfg.IdleCosign = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{
		cfg:     cfg,
		store:   cfg.Store,
		log:     logger,
		origin:  cfg.Keys.Log.Name(),
		metrics: newMetrics(),
		reqs:    make(chan *request, 1024),
		stop:    make(chan struct{}),
		dead:    make(chan struct{}),
		notify:  make(chan struct{}),
	}
	return l, nil
}

// recover loads the last checkpoint and the tree, and checks they agree,
// and then drops the envelopes that a crash left beyond the tree.
func (l *Ledger) recover(ctx context.Context) error {
	if err := l.recoverTree(ctx); err != nil {
		return err
	}
	return l.dropOrphanEntries(ctx, l.tree.size())
}

// dropOrphanEntries deletes the envelopes stored at leaf indices from size
// on. A batch's envelopes may be written ahead of it (Batch.SetAhead); a
// crash between the two leaves them in the store without their leaves.
// Their events were never acknowledged, so they come again and are logged
// at fresh indices; the copies left over would otherwise lie in the store
// for ever, out of reach of retention and erasure, and be overwritten by
// other envelopes only as far as the log grows over them.
func (l *Ledger) dropOrphanEntries(ctx context.Context, size uint64) error {
	var b Batch
	err := l.store.Scan(ctx, u64Key(tagEntry, size), []byte{tagEntry + 1}, func(k, _ []byte) error {
		b.Delete(bytes.Clone(k))
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't look for envelopes beyond the tree: %w", err)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := l.store.Commit(ctx, &b); err != nil {
		return fmt.Errorf("couldn't delete %d envelopes beyond the tree: %w", b.Len(), err)
	}
	l.log.Warn("deleted envelopes beyond the tree that a crash left behind; their events are logged again when they are delivered again",
		"count", b.Len(), "from_index", size)
	return nil
}

// recoverTree loads the last checkpoint and the tree, and checks they
// agree.
func (l *Ledger) recoverTree(ctx context.Context) error {
	seqBytes, err := l.store.Get(ctx, metaCheckpointSeq)
	if errors.Is(err, ErrNotFound) {
		l.tree = newTree()
		if l.cfg.Merkle == nil {
			return nil
		}
		// With a Merkle backend the very first batch (the covenant) may
		// have crashed between its pending commit and its checkpoint.
		if err := l.recoverPending(ctx, l.tree, 0); err != nil {
			return err
		}
		if l.tree.size() == 0 {
			return nil
		}
		if err := l.loadLastIntegrated(ctx); err != nil {
			return err
		}
		return l.loadCovenants(ctx)
	}
	if err != nil {
		return fmt.Errorf("couldn't read checkpoint sequence: %w", err)
	}
	if len(seqBytes) != 8 {
		return fmt.Errorf("checkpoint sequence is %d bytes: %w", len(seqBytes), ErrCorrupt)
	}
	l.cpSeq = binary.BigEndian.Uint64(seqBytes)
	note, err := l.store.Get(ctx, u64Key(tagCheckpoint, l.cpSeq))
	if err != nil {
		return fmt.Errorf("couldn't read checkpoint %d: %w", l.cpSeq, err)
	}
	cp, err := verifier.OpenCheckpoint(note, l.cfg.Keys)
	if err != nil {
		return fmt.Errorf("the last stored checkpoint does not verify with this log's keys (%w): %w", err, ErrCorrupt)
	}
	t, err := loadTree(ctx, l, cp.Size)
	if err != nil {
		return fmt.Errorf("couldn't load the tree of size %d: %w", cp.Size, err)
	}
	root, err := t.root()
	if err != nil {
		return err
	}
	if root != cp.Hash {
		return fmt.Errorf("the stored tiles give root %x at size %d but the last checkpoint says %x: %w", root[:8], cp.Size, cp.Hash[:8], ErrCorrupt)
	}
	// The newest leaves must hash to the edge tile, and nothing may lie
	// beyond the checkpoint: a batch is committed whole or not at all.
	// With a Merkle backend leaves beyond it are the pending tail of a
	// batch that crashed between its two commits (merkle.go): they must
	// extend the checkpoint's tree to exactly the stored tiles, and
	// syncBackend finishes that batch before the log serves.
	if err := l.checkEdge(ctx, t, cp.Size); err != nil {
		return err
	}
	if l.cfg.Merkle != nil {
		if err := l.recoverPending(ctx, t, cp.Size); err != nil {
			return err
		}
	}
	l.tree = t
	l.head.Store(&Head{Size: cp.Size, Root: cp.Hash, Note: note, Seq: l.cpSeq})
	if err := l.loadLastIntegrated(ctx); err != nil {
		return err
	}
	return l.loadCovenants(ctx)
}

// loadLastIntegrated reads the integration time of the tree's last leaf
// (pending or logged), below which the clock is not allowed to go.
func (l *Ledger) loadLastIntegrated(ctx context.Context) error {
	if l.tree.size() == 0 {
		return nil
	}
	rec, err := l.LeafRecord(ctx, l.tree.size()-1)
	if err != nil {
		return fmt.Errorf("couldn't read the last leaf record: %w", err)
	}
	l.lastIntegrated = rec.IntegratedAt
	return nil
}

func (l *Ledger) checkEdge(ctx context.Context, t *tree, size uint64) error {
	if _, err := l.store.Get(ctx, u64Key(tagLeaf, size)); err == nil && l.cfg.Merkle == nil {
		return fmt.Errorf("a leaf record exists at index %d beyond the checkpoint size: %w", size, ErrCorrupt)
	}
	first := size - size%verifier.TileWidth
	for i := first; i < size; i++ {
		rec, err := l.store.Get(ctx, u64Key(tagLeaf, i))
		if err != nil {
			return fmt.Errorf("leaf record %d: %w", i, errors.Join(err, ErrCorrupt))
		}
		h := verifier.LeafHash(rec)
		off := (i - first) * sha256.Size
		if string(t.edge[0][off:off+sha256.Size]) != string(h[:]) {
			return fmt.Errorf("leaf record %d does not hash to its tile entry: %w", i, ErrCorrupt)
		}
	}
	return nil
}

// loadCovenants rebuilds the chain of covenant versions from the log.
func (l *Ledger) loadCovenants(ctx context.Context) error {
	var idxs []uint64
	err := l.store.Scan(ctx, []byte{tagCovenant}, []byte{tagCovenant + 1}, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("covenant index entry: %w", ErrCorrupt)
		}
		idxs = append(idxs, binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't list covenant versions: %w", err)
	}
	if len(idxs) == 0 {
		return fmt.Errorf("the log has no covenant entry: %w", ErrCorrupt)
	}
	for i, idx := range idxs {
		raw, err := l.store.Get(ctx, u64Key(tagEntry, idx))
		if err != nil {
			return fmt.Errorf("couldn't read covenant entry at leaf %d: %w", idx, err)
		}
		sc, err := events.ParseSignedCovenant(raw)
		if err != nil {
			return fmt.Errorf("covenant entry at leaf %d: %w", idx, errors.Join(err, ErrCorrupt))
		}
		if i == 0 {
			l.chain, err = events.NewChain(sc, l.cfg.AdminVkey)
		} else {
			err = l.chain.Append(sc)
		}
		if err != nil {
			return fmt.Errorf("covenant entry at leaf %d: %w", idx, err)
		}
		l.covIndex = idx
	}
	l.publishChain()
	l.covIdx.Store(l.covIndex)
	return nil
}

// adoptCovenant appends the given covenant version when it is new.
func (l *Ledger) adoptCovenant(ctx context.Context, sc *events.SignedCovenant) error {
	if sc == nil {
		if l.chain == nil {
			return errors.New("ledger: the store is empty and no covenant was given")
		}
		return nil
	}
	if sc.Covenant.Origin != l.origin {
		return fmt.Errorf("ledger: the covenant is for origin %q but the log key is for %q", sc.Covenant.Origin, l.origin)
	}
	if l.chain == nil {
		chain, err := events.NewChain(sc, l.cfg.AdminVkey)
		if err != nil {
			return fmt.Errorf("ledger: refusing covenant: %w", err)
		}
		if err := l.appendCovenant(ctx, sc, true); err != nil {
			return err
		}
		l.chain = chain
		l.publishChain()
		return nil
	}
	latest := l.chain.Latest()
	switch {
	case sc.Covenant.Version == latest.Covenant.Version:
		if string(sc.Envelope.Raw) != string(latest.Envelope.Raw) {
			return fmt.Errorf("ledger: covenant version %d given differs from the version %d already logged: %w", sc.Covenant.Version, latest.Covenant.Version, events.ErrCovenantChain)
		}
		return nil
	case sc.Covenant.Version < latest.Covenant.Version:
		l.log.Warn("covenant file is older than the logged covenant; running on the logged one",
			"file_version", sc.Covenant.Version, "logged_version", latest.Covenant.Version)
		return nil
	}
	if err := l.chain.Append(sc); err != nil {
		return fmt.Errorf("ledger: refusing covenant version %d: %w", sc.Covenant.Version, err)
	}
	if err := l.appendCovenant(ctx, sc, false); err != nil {
		return err
	}
	l.publishChain()
	return nil
}

// appendCovenant commits a covenant version as a log entry (before the
// sequencer runs, so it is the only writer).
func (l *Ledger) appendCovenant(ctx context.Context, sc *events.SignedCovenant, first bool) error {
	idx := l.tree.size()
	prev := l.covIndex
	if first {
		prev = idx
	}
	var b Batch
	now := l.integrationTime()
	rec := verifier.LeafRecord{Type: verifier.EntryCovenant, BodyHash: sha256.Sum256(sc.Envelope.Raw),
		IntegratedAt: now, CovenantIndex: prev}
	if err := l.addLeaf(&b, idx, &rec, sc.Envelope.Raw); err != nil {
		return err
	}
	b.Set(u64Key(tagCovenant, uint64(sc.Covenant.Version)), binary.BigEndian.AppendUint64(nil, idx))
	if err := l.commit(ctx, &b); err != nil {
		return err
	}
	l.covIndex = idx
	l.covIdx.Store(idx)
	l.log.Info("covenant version logged", "version", sc.Covenant.Version, "leaf_index", idx)
	return nil
}

// integrationTime is the clock, never earlier than the last leaf's time.
func (l *Ledger) integrationTime() time.Time {
	now := l.cfg.Now().UTC().Truncate(time.Millisecond)
	if now.Before(l.lastIntegrated) {
		l.metrics.clockBackwards.Inc()
		l.log.Warn("clock went backwards; keeping integration times monotonic",
			"clock", now, "last_integrated_at", l.lastIntegrated)
		now = l.lastIntegrated
	}
	l.lastIntegrated = now
	return now
}

// addLeaf appends one leaf to the tree and its record and body to b.
func (l *Ledger) addLeaf(b *Batch, idx uint64, rec *verifier.LeafRecord, body []byte) error {
	recBytes, err := rec.MarshalBinary()
	if err != nil {
		return fmt.Errorf("couldn't encode leaf record %d: %w", idx, err)
	}
	h := verifier.LeafHash(recBytes)
	if err := l.tree.append(h[:]); err != nil {
		return err
	}
	if l.cfg.Merkle != nil {
		l.unlogged = append(l.unlogged, recBytes)
	}
	b.Set(u64Key(tagLeaf, idx), recBytes)
	if body != nil {
		b.Set(u64Key(tagEntry, idx), body)
	}
	return nil
}

// commit adds the changed tiles and a new checkpoint to b and commits it.
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
	l.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	// Durable here; now the replicas' quorum must have it before anyone
	// sees the new head or is told of the batch.
	if err := l.replicate(ctx); err != nil {
		return err
	}
	h := job.head
	l.head.Store(h)
	l.metrics.observeHead(h, l.cfg.Now)
	l.notifyMu.Lock()
	close(l.notify)
	l.notify = make(chan struct{})
	l.notifyMu.Unlock()
	return nil
}

// commitRecords commits store writes that are not log entries (they never
// touch the tree) through the sequencer: with the next batch, under its
// checkpoint, and so, with replication, in SPOOR_LOG to every standby,
// which a write of the ledger's own beside the sequencer would never reach.
func (l *Ledger) commitRecords(ctx context.Context, ops []Op) error {
	p, err := l.Submit(ctx, []Submission{{records: ops}})
	if err != nil {
		return err
	}
	_, err = p.Wait(ctx)
	return err
}

// Submit queues submissions for the sequencer and returns their future.
// It blocks while the queue is full (backpressure) or until ctx ends.
func (l *Ledger) Submit(ctx context.Context, subs []Submission) (*Pending, error) {
	r := &request{subs: subs, done: make(chan struct{})}
	select {
	case <-l.dead:
		return nil, l.deadErr()
	default:
	}
	select {
	case l.reqs <- r:
		return &Pending{r}, nil
	case <-l.dead:
		return nil, l.deadErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Ledger) deadErr() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return ErrClosed
}

// Done is closed when the sequencer has stopped; Err then says why.
func (l *Ledger) Done() <-chan struct{} { return l.dead }

// Err is the error that stopped the sequencer, or nil.
func (l *Ledger) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops the sequencer after the batch in progress; queued requests
// get ErrClosed. It does not close the Store.
func (l *Ledger) Close() error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.dead
	if err := l.Err(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// run is the sequencer: the only goroutine that changes the tree.
//
// It commits in groups: it takes every request queued while the previous
// commit ran (up to MaxBatch entries) and commits them at once. Under load
// the requests pile up during each commit and the batches grow by
// themselves, so the fsync is shared by more entries exactly when there are
// more, and nothing waits. Only a batch of fewer than smallBatch entries
// waits up to MaxBatchAge for more: at a moderate rate that halves the
// number of commits (each signs a checkpoint and rewrites the partial
// tiles) for at most that much latency.
func (l *Ledger) run() {
	var idle <-chan time.Time
	var ticker *time.Ticker
	if l.cfg.IdleCosign > 0 {
		ticker = time.NewTicker(l.cfg.IdleCosign)
		defer ticker.Stop()
		idle = ticker.C
	}
	lastCommit := time.Now()
	fail := func(err error, batch []*request) {
		// A commit still running finishes first: the store must not be
		// closed under it, and its failure is the one to report.
		if ferr := l.waitInflight(); ferr != nil && errors.Is(err, ErrClosed) {
			err = ferr
		}
		l.err.Store(&err)
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
		close(l.dead)
		// Fail every request still queued.
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
	if err := l.loadIDFilter(context.Background()); err != nil {
		l.log.Error("sequencer stopped", "err", err)
		fail(err, nil)
		return
	}
	var timer *time.Timer
	batch := make([]*request, 0, 64)
	for {
		var first *request
		select {
		case first = <-l.reqs:
		case <-l.inflightDone():
			if err := l.waitInflight(); err != nil {
				l.log.Error("sequencer stopped", "err", err)
				fail(err, nil)
				return
			}
			continue
		case <-idle:
			if time.Since(lastCommit) < l.cfg.IdleCosign {
				continue
			}
			if err := l.waitInflight(); err != nil {
				l.log.Error("sequencer stopped", "err", err)
				fail(err, nil)
				return
			}
			var b Batch
			if err := l.commit(context.Background(), &b); err != nil {
				l.log.Error("idle re-cosign failed; stopping", "err", err)
				fail(err, nil)
				return
			}
			lastCommit = time.Now()
			continue
		case <-l.stop:
			fail(ErrClosed, nil)
			return
		}
		batch = append(batch[:0], first)
		n := len(first.subs)
		// Everything that queued up while the previous batch committed.
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
		if l.cfg.MaxBatchAge > 0 && n < min(l.cfg.MaxBatch, smallBatch) {
			if timer == nil {
				timer = time.NewTimer(l.cfg.MaxBatchAge)
			} else {
				timer.Reset(l.cfg.MaxBatchAge)
			}
		collect:
			for n < min(l.cfg.MaxBatch, smallBatch) {
				select {
				case r := <-l.reqs:
					batch = append(batch, r)
					n += len(r.subs)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		async, err := l.sequence(context.Background(), batch)
		if err != nil {
			l.log.Error("sequencer stopped", "err", err)
			fail(err, batch)
			return
		}
		lastCommit = time.Now()
		if !async {
			for _, r := range batch {
				close(r.done)
			}
		}
		clear(batch)
	}
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
}

// sequence assigns leaf indices to a batch and commits it.
//
// It works in three passes so that only what must be serial is: first,
// on every core, each disclosure's envelope hash, duplicate lookup,
// findings and index keys (lookupEvents); then, in submission order, the
// duplicate decisions, leaf indices and tree appends; then the envelope
// bodies (sealed on every core with DataKeys) and the index entries.
//
// A batch of disclosures alone (no tombstones, no records) on a ledger
// without a Merkle backend or replication is committed beside the
// sequencer (async true): the next batch is prepared, signed and sealed
// while this one's Store.Commit runs, and waits only to hand its own
// commit over, so the commits stay in order and one at a time. Anything
// else first waits for the commit in flight and commits in line.
func (l *Ledger) sequence(ctx context.Context, batch []*request) (async bool, err error) {
	start := time.Now()
	async = l.cfg.Merkle == nil && l.cfg.Replicator == nil
	for _, r := range batch {
		for i := range r.subs {
			if r.subs[i].records != nil || r.subs[i].Tombstone != nil {
				// Tombstones read the entries they erase, which may be
				// in the batch in flight.
				async = false
			}
		}
	}
	if !async {
		if err := l.waitInflight(); err != nil {
			return false, err
		}
	}
	now := l.integrationTime()
	covIdx := l.covIndex
	cov := l.covenant.Load().Covenant
	total := 0
	for _, r := range batch {
		total += len(r.subs)
	}
	// Per new entry: the leaf record, the envelope, two index entries and
	// perhaps findings.
	b := Batch{Ops: make([]Op, 0, 5*total+8)}
	var erased map[uint64]bool
	changedKeys := map[string]bool{}
	added, dups, conflicts, rejects := 0, 0, 0, 0
	preps, err := l.lookupEvents(ctx, batch, cov, now)
	if err != nil {
		return false, err
	}
	seen := make(map[partyEventID]inBatch, total)
	k := 0
	for _, r := range batch {
		r.outcomes = make([]Outcome, len(r.subs))
		for i := range r.subs {
			s := &r.subs[i]
			p := &preps[k]
			k++
			if s.records != nil {
				b.Ops = append(b.Ops, s.records...)
				continue
			}
			if s.Reject != nil {
				if err := recordRejection(&b, s.Reject); err != nil {
					return false, err
				}
				r.outcomes[i].Err = &events.RejectError{Reason: s.Reject.Reason, Err: errors.New(s.Reject.Message)}
				rejects++
				continue
			}
			if s.Tombstone != nil {
				if erased == nil {
					erased = map[uint64]bool{}
				}
				r.outcomes[i] = l.tombstone(ctx, &b, s.Tombstone, now, covIdx, erased, changedKeys)
				continue
			}
			d := s.Disclosure
			pid := partyEventID{d.Discloser, d.ID}
			prev, ok := seen[pid]
			if !ok && l.inflight != nil {
				prev, ok = l.inflight.ids[pid]
			}
			if !ok && p.found {
				prev, ok = p.logged, true
			}
			if ok {
				if prev.hash == p.hash {
					r.outcomes[i] = Outcome{Index: prev.idx, Duplicate: true}
					dups++
				} else {
					re := &events.RejectError{Reason: events.ReasonIDConflict,
						Err: fmt.Errorf("event id already logged at leaf %d with other bytes; the first one stands", prev.idx)}
					r.outcomes[i] = Outcome{Index: prev.idx, Err: re}
					// Recorded like any refusal, with the hash of these
					// bytes, so that a status request about them is
					// answered (rare: no cost to the common path).
					if err := recordRejection(&b, &Rejection{EventID: d.ID, Party: d.Discloser, Reason: re.Reason,
						Message: re.Error(), At: now, SHA256: hex.EncodeToString(p.hash[:])}); err != nil {
						return false, err
					}
					conflicts++
				}
				continue
			}
			// Refused only here, where the time of recording is known,
			// and after the duplicate check: a retry of an event logged
			// before this rule existed still gets its receipt.
			if err := events.CheckOccurredInFuture(d, now, l.cfg.FutureSkew); err != nil {
				var re *events.RejectError
				if !errors.As(err, &re) {
					return false, err
				}
				if err := recordRejection(&b, &Rejection{EventID: d.ID, Party: d.Discloser, Reason: re.Reason,
					Message: re.Detail(), At: now, SHA256: hex.EncodeToString(p.hash[:])}); err != nil {
					return false, err
				}
				r.outcomes[i].Err = err
				rejects++
				continue
			}
			idx := l.tree.size()
			rec := verifier.LeafRecord{Type: verifier.EntryDisclosure, BodyHash: p.hash, IntegratedAt: now, CovenantIndex: covIdx}
			if err := l.addLeaf(&b, idx, &rec, nil); err != nil {
				return false, err
			}
			if added == 0 {
				crashpoint.Hit(crashpoint.MidBatch)
			}
			if p.dataKey != "" {
				l.keyCounts[p.dataKey]++
				changedKeys[p.dataKey] = true
			}
			p.idx, p.added = idx, true
			l.ids.add(p.idKey)
			seen[pid] = inBatch{idx, p.hash}
			r.outcomes[i] = Outcome{Index: idx}
			added++
		}
	}
	bodies, err := l.sealBodies(batch, preps)
	if err != nil {
		return false, err
	}
	// One buffer for every key of the batch (the Store copies them).
	keys := make([]byte, 0, added*(9+8+41+9))
	k = 0
	for _, r := range batch {
		for i := range r.subs {
			p := &preps[k]
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
			keys = l.addIndices(&b, keys, p.idx, p)
		}
	}
	for id := range changedKeys {
		b.Set(keyCountKey(id), binary.BigEndian.AppendUint64(nil, l.keyCounts[id]))
	}
	job, err := l.seal(ctx, &b)
	if err != nil {
		return false, err
	}
	if async {
		if err := l.finishAsync(ctx, job, batch, seen); err != nil {
			return false, err
		}
	} else if err := l.finish(ctx, job); err != nil {
		return false, err
	}
	l.metrics.entries.Add(float64(added))
	l.metrics.duplicates.Add(float64(dups))
	l.metrics.conflicts.Add(float64(conflicts))
	l.metrics.batchSize.Observe(float64(added))
	l.metrics.sequenceSeconds.Observe(time.Since(start).Seconds())
	_ = rejects
	return async, nil
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

// finishAsync waits for the commit in flight, then commits job on a
// goroutine of its own, which closes the requests of batch when it is
// over (with the commit's error, if it failed). ids are the batch's new
// event ids, for the next batch's duplicate check.
func (l *Ledger) finishAsync(ctx context.Context, job *commitJob, batch []*request, ids map[partyEventID]inBatch) error {
	if err := l.waitInflight(); err != nil {
		return err
	}
	reqs := slices.Clone(batch)
	ic := &inflightCommit{ids: ids, done: make(chan struct{})}
	l.inflight = ic
	go func() {
		ic.err = l.finish(ctx, job)
		for _, r := range reqs {
			r.err = ic.err
			close(r.done)
		}
		close(ic.done)
	}()
	return nil
}

// waitInflight waits for the commit in flight, if any, and returns its
// error.
func (l *Ledger) waitInflight() error {
	ic := l.inflight
	if ic == nil {
		return nil
	}
	<-ic.done
	l.inflight = nil
	return ic.err
}

// inflightDone is the done channel of the commit in flight, or nil.
func (l *Ledger) inflightDone() <-chan struct{} {
	if l.inflight == nil {
		return nil
	}
	return l.inflight.done
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
		if s.Reject != nil || s.Tombstone != nil || s.Disclosure == nil {
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
