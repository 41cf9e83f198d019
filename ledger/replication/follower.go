package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/ledger"
)

// Follower applies LogStream to a standby ledger (ledger.OpenStandby), in
// order, from the stream sequence after the last one its store holds.
type Follower struct {
	setup *Setup
	l     *ledger.Ledger
	keys  *ledger.DataKeys
	log   *slog.Logger

	cons jetstream.Consumer
	next uint64 // stream sequence the consumer delivers next
}

// NewFollower returns the follower of standby l; keys is l's data key
// folder (nil when envelopes are stored unencrypted).
func NewFollower(s *Setup, l *ledger.Ledger, keys *ledger.DataKeys, log *slog.Logger) *Follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Follower{setup: s, l: l, keys: keys, log: log}
}

// consumer (re)creates the ordered consumer from the ledger's position.
func (f *Follower) consumer(ctx context.Context) (jetstream.Consumer, error) {
	pos := f.l.ReplicaPosition()
	if f.cons != nil && f.next == pos+1 {
		return f.cons, nil
	}
	first, last, err := f.setup.bounds(ctx)
	if err != nil {
		return nil, err
	}
	if last > pos && first > pos+1 {
		return nil, fmt.Errorf("this store is at stream sequence %d, %s starts at %d: %w", pos, LogStream, first, ErrNeedBackup)
	}
	c, err := f.setup.JS.OrderedConsumer(ctx, LogStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.setup.Subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    pos + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", LogStream, err)
	}
	f.cons, f.next = c, pos+1
	return c, nil
}

// Step applies what the stream holds beyond the ledger's position, waiting
// at most wait for the first message, and returns how many parts it
// applied. An error from ledger.Apply (ErrReplicaMismatch and the like) is
// fatal: the standby must stop.
func (f *Follower) Step(ctx context.Context, wait time.Duration) (int, error) {
	c, err := f.consumer(ctx)
	if err != nil {
		return 0, err
	}
	batch, err := c.Fetch(256, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, fmt.Errorf("couldn't fetch from %s: %w", LogStream, err)
	}
	n := 0
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return n, fmt.Errorf("message of %s without metadata: %w", LogStream, err)
		}
		seq := md.Sequence.Stream
		if err := f.fetchKeys(ctx, m.Data()); err != nil {
			return n, err
		}
		res, err := f.l.Apply(ctx, seq, m.Data())
		if err != nil {
			f.cons = nil
			return n, fmt.Errorf("couldn't apply stream sequence %d: %w", seq, err)
		}
		f.next = seq + 1
		n++
		if res.Applied {
			f.log.Debug("replicated batch applied", "stream_seq", seq, "tree_size", res.Head.Size, "checkpoint_seq", res.Head.Seq)
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		f.cons = nil
		return n, fmt.Errorf("couldn't fetch from %s: %w", LogStream, err)
	}
	return n, nil
}

// fetchKeys imports, before a part is applied, the data keys its sealed
// envelopes use that this standby does not hold yet. A key missing from
// the bucket was destroyed by retention: its envelopes stay unreadable,
// as they are on the active ledger.
func (f *Follower) fetchKeys(ctx context.Context, part []byte) error {
	if f.keys == nil {
		return nil
	}
	for _, id := range ledger.ReplicaKeyIDs(part) {
		if f.keys.Has(id) {
			continue
		}
		e, err := f.setup.DataKeys.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("couldn't read data key %s from %s: %w", id, DataKeysBucket, err)
		}
		if err := f.keys.Import(id, e.Value()); err != nil {
			return err
		}
	}
	return nil
}

// KeySync brings the standby's data key folder in line with
// DataKeysBucket: it imports keys it lacks and destroys keys the active
// ledger destroyed (purged from the bucket). Run it every minute or so.
func (f *Follower) KeySync(ctx context.Context) error {
	if f.keys == nil {
		return nil
	}
	have := map[string]bool{}
	names, err := f.setup.DataKeys.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("couldn't list %s: %w", DataKeysBucket, err)
	}
	for _, k := range names {
		have[k] = true
	}
	for id := range have {
		if f.keys.Has(id) {
			continue
		}
		e, err := f.setup.DataKeys.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("couldn't read data key %s: %w", id, err)
		}
		if err := f.keys.Import(id, e.Value()); err != nil {
			return err
		}
	}
	local, err := f.keys.IDs()
	if err != nil {
		return err
	}
	for _, id := range local {
		if have[id] {
			continue
		}
		if err := f.keys.Destroy(id); err != nil {
			return err
		}
		f.log.Info("data key destroyed, following the active ledger", "key", id)
	}
	return nil
}

// CatchUp brings the ledger to the end of the stream, as the last step
// before it is promoted (the caller holds the lease): it publishes what
// the ledger's own outbox holds beyond the stream (a restarted former
// active), applies every batch up to the stream's last sequence, and marks
// the parts of a batch its dead publisher never finished as skipped. After
// it, the ledger's position is the stream's last sequence.
func (f *Follower) CatchUp(ctx context.Context, pub *Publisher) error {
	if err := pub.Resume(ctx, f.l); err != nil {
		return err
	}
	_, last, err := f.setup.bounds(ctx)
	if err != nil {
		return err
	}
	for f.l.ReplicaPosition() < last {
		before := f.l.ReplicaPosition()
		if _, err := f.Step(ctx, 200*time.Millisecond); err != nil {
			return err
		}
		if f.l.ReplicaPosition() == before && f.next > last {
			break // only parts of an unfinished batch were left
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	f.l.SkipIncomplete(last)
	return nil
}
