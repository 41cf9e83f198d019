package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/ledger"
)

// publishTimeout bounds one part's publish; a quorum that does not answer
// within it halts the sequencer rather than keep submitters waiting.
const publishTimeout = 10 * time.Second

// Publisher is the active ledger's ledger.Replicator: it puts the data keys
// a batch needs into DataKeysBucket, then publishes the batch's parts on
// LogStream, each fenced by the stream sequence it must follow, and
// returns once JetStream has acknowledged every part (in a cluster: once
// the stream's quorum holds it).
type Publisher struct {
	setup *Setup
	lease *Lease
	log   *slog.Logger
}

// NewPublisher returns the Replicator of the active ledger. lease, if not
// nil, must be valid at each batch: a ledger that may have lost the lease
// publishes nothing more.
func NewPublisher(s *Setup, lease *Lease, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{setup: s, lease: lease, log: log}
}

// Replicate implements ledger.Replicator.
func (p *Publisher) Replicate(ctx context.Context, out *ledger.ReplicaOut) error {
	if p.lease != nil && !p.lease.Valid() {
		return fmt.Errorf("checkpoint %d not published: %w", out.CheckpointSeq, ErrLeaseLost)
	}
	for id, raw := range out.DataKeys {
		if err := p.putKey(ctx, id, raw); err != nil {
			return err
		}
	}
	return p.publishParts(ctx, out, 0)
}

func (p *Publisher) putKey(ctx context.Context, id string, raw []byte) error {
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := p.setup.DataKeys.Put(pctx, id, raw); err != nil {
		return fmt.Errorf("couldn't store data key %s in %s: %w", id, DataKeysBucket, err)
	}
	return nil
}

// publishParts publishes out.Parts[from:], part i at stream sequence
// out.FirstSeq+i.
func (p *Publisher) publishParts(ctx context.Context, out *ledger.ReplicaOut, from int) error {
	for i := from; i < len(out.Parts); i++ {
		want := out.FirstSeq + uint64(i)
		msg := &nats.Msg{Subject: p.setup.Subject, Data: out.Parts[i]}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		ack, err := p.setup.JS.PublishMsg(pctx, msg,
			jetstream.WithExpectStream(LogStream), jetstream.WithExpectLastSequence(want-1))
		cancel()
		switch {
		case isWrongLastSeq(err):
			return fmt.Errorf("part %d of checkpoint %d expected the stream at sequence %d: %w", i, out.CheckpointSeq, want-1, ErrFenced)
		case err != nil:
			return fmt.Errorf("couldn't publish part %d of checkpoint %d on %s: %w", i, out.CheckpointSeq, LogStream, err)
		case ack.Sequence != want:
			// A duplicate ack (same message id) or another stream: not
			// where this ledger meant it to be.
			return fmt.Errorf("part %d of checkpoint %d landed at sequence %d, not %d: %w", i, out.CheckpointSeq, ack.Sequence, want, ErrFenced)
		}
	}
	return nil
}

// Resume publishes what of the ledger's outbox the stream lacks: after a
// crash between the commit and the publish, the store is ahead of the
// stream by (part of) one batch that nobody was told about. It returns
// ErrDiverged when the stream and the store cannot be reconciled that way.
// Call it on the active ledger's store before it sequences (CatchUp does).
func (p *Publisher) Resume(ctx context.Context, l *ledger.Ledger) error {
	_, last, err := p.setup.bounds(ctx)
	if err != nil {
		return err
	}
	pos := l.ReplicaPosition()
	out, err := l.ReplicaOutbox(ctx)
	if err != nil {
		return err
	}
	if last >= pos {
		return p.checkOwnLast(ctx, out, pos)
	}
	if out == nil || out.LastSeq() != pos || last+1 < out.FirstSeq {
		return fmt.Errorf("this store is at stream sequence %d but %s ends at %d: %w", pos, LogStream, last, ErrDiverged)
	}
	// Parts already on the stream must be this batch's, not those of
	// another ledger that took over meanwhile.
	for seq := out.FirstSeq; seq <= last; seq++ {
		m, err := p.setup.Stream.GetMsg(ctx, seq)
		if err != nil {
			return fmt.Errorf("couldn't read stream sequence %d of %s: %w", seq, LogStream, err)
		}
		if !bytes.Equal(m.Data, out.Parts[seq-out.FirstSeq]) {
			return fmt.Errorf("stream sequence %d holds another batch than this store's checkpoint %d: %w", seq, out.CheckpointSeq, ErrDiverged)
		}
	}
	for id, raw := range out.DataKeys {
		if err := p.putKey(ctx, id, raw); err != nil {
			return err
		}
	}
	from := int(last + 1 - out.FirstSeq)
	p.log.Warn("publishing the last batch again: the ledger stopped before the stream had all of it",
		"checkpoint_seq", out.CheckpointSeq, "parts", len(out.Parts)-from)
	if err := p.publishParts(ctx, out, from); err != nil {
		return err
	}
	return nil
}

// checkOwnLast checks, when this store's last batch was its own, that the
// stream holds that batch's last part at the store's position, and not a
// batch of another active that took over after this one crashed before
// publishing. A part already gone from the stream (MaxAge) is not checked.
func (p *Publisher) checkOwnLast(ctx context.Context, out *ledger.ReplicaOut, pos uint64) error {
	if out == nil || pos == 0 || out.LastSeq() != pos {
		return nil
	}
	m, err := p.setup.Stream.GetMsg(ctx, pos)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read stream sequence %d of %s: %w", pos, LogStream, err)
	}
	if !bytes.Equal(m.Data, out.Parts[len(out.Parts)-1]) {
		return fmt.Errorf("stream sequence %d holds another batch than this store's checkpoint %d (another ledger took over after this one stopped before publishing): %w",
			pos, out.CheckpointSeq, ErrDiverged)
	}
	return nil
}

// KeySync makes DataKeysBucket hold exactly the data keys of the active
// ledger's folder: it adds keys the bucket lacks and purges keys the ledger
// destroyed (retention), so a destroyed key does not outlive its
// destruction in NATS. The active runs it at promotion and then every
// interval (serve: every minute).
func (p *Publisher) KeySync(ctx context.Context, keys *ledger.DataKeys) error {
	if keys == nil {
		return nil
	}
	local, err := keys.IDs()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	names, err := p.setup.DataKeys.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("couldn't list %s: %w", DataKeysBucket, err)
	}
	for _, k := range names {
		have[k] = true
	}
	localSet := map[string]bool{}
	for _, id := range local {
		localSet[id] = true
		if have[id] {
			continue
		}
		raw, err := keys.Export(id)
		if errors.Is(err, ledger.ErrKeyDestroyed) {
			continue
		}
		if err != nil {
			return err
		}
		if err := p.putKey(ctx, id, raw); err != nil {
			return err
		}
	}
	for id := range have {
		if localSet[id] {
			continue
		}
		if err := p.setup.DataKeys.Purge(ctx, id); err != nil {
			return fmt.Errorf("couldn't purge destroyed data key %s from %s: %w", id, DataKeysBucket, err)
		}
		p.log.Info("destroyed data key purged from NATS", "key", id)
	}
	return nil
}
