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
// re-checks the stored tree against the last checkpoint. The sequencer's
// stages (collect, prepare, assign, seal, commit) and the one place that
// fails every waiter are in sequencer.go.
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
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
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
	// WitnessFailOpen, during the roll-out of a witness policy, serves the
	// signed head as /checkpoint while it is newer than the witnessed head,
	// marked as not witnessed (witnessed.go); inzage answers wait for a
	// witnessed checkpoint either way. False (the default) fails closed.
	WitnessFailOpen bool
	// Merkle, if set, is a second home of the Merkle tree (Trillian, see
	// ledger/trillianlog) that must reach the ledger's own root before a
	// checkpoint is signed, and that serves the inclusion and consistency
	// proofs (merkle.go). Nil: the tiles in the Store are the only tree,
	// and a batch is one commit.
	Merkle MerkleBackend
	// IndexVRF, if set, turns the subject index on (index.go, issue 22):
	// the key derives the map keys (ledger/subjectindex.OpenVRFKey keeps
	// it in DIR/index-vrf.key). It must stay the same for a log. Nil: no
	// index and no index heads (a log that had one keeps its last head
	// until the index is on again, when Open catches up).
	IndexVRF *subjectindex.VRFKey
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
	// Answer, when set, appends an answer entry instead (answerentry.go).
	Answer *AnswerRequest

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

	head atomic.Pointer[Head]
	// witnessed is the newest checkpoint whose witness cosignatures met
	// the policy (witnessed.go).
	witnessed atomic.Pointer[Head]
	covenant  atomic.Pointer[events.SignedCovenant]
	covIdx    atomic.Uint64
	// chainView is the covenant chain as readers see it (chainview.go).
	chainView atomic.Pointer[ChainView]

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every commit

	fullTiles fullTileCache // node hashes of recently read full tiles (read.go)

	repl replicaState // replication (replica.go); owned like the tree

	// inflight is the batch whose Store.Commit runs beside the sequencer
	// (finishAsync), nil when none; owned by the sequencer.
	inflight *inflightCommit

	// sidx is the subject index (index.go), nil when it is off; owned by
	// the sequencer. indexHeads counts the heads committed since Open.
	sidx       *subjectIndex
	indexHeads atomic.Uint64
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
	if err := l.loadWitnessed(ctx); err != nil {
		return nil, err
	}
	// After the covenant: the build's first index head names it.
	if err := l.recoverIndex(ctx); err != nil {
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
	if cfg.IndexVRF != nil {
		l.sidx = newSubjectIndex(cfg.IndexVRF)
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
