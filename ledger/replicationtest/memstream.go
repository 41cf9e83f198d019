package replicationtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/spoor-ledger/spoor/ledger"
)

// Errors of MemStream, as ledger/replication has them for NATS.
var (
	ErrFenced   = errors.New("replicationtest: fenced: the stream has moved past this ledger")
	ErrDiverged = errors.New("replicationtest: this store and the stream disagree")
)

// MemStream is the reference Stream: the parts in a slice, the data keys
// in a map, with the semantics ledger/replication gives SPOOR_LOG and
// SPOOR_DATAKEYS (each part fenced by the sequence it must follow; the
// outbox published again on catch-up; a diverged store refused). It keeps
// everything forever (no MaxAge).
type MemStream struct {
	mu    sync.Mutex
	parts [][]byte
	keys  map[string][]byte
}

// NewMemStream returns an empty stream.
func NewMemStream() *MemStream { return &MemStream{keys: map[string][]byte{}} }

// Publisher implements Stream.
func (m *MemStream) Publisher() ledger.Replicator { return memPublisher{m} }

type memPublisher struct{ m *MemStream }

func (p memPublisher) Replicate(_ context.Context, out *ledger.ReplicaOut) error {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, raw := range out.DataKeys {
		m.keys[id] = bytes.Clone(raw)
	}
	return m.publish(out, 0)
}

// publish appends out.Parts[from:], part i only at sequence FirstSeq+i.
func (m *MemStream) publish(out *ledger.ReplicaOut, from int) error {
	for i := from; i < len(out.Parts); i++ {
		if want := out.FirstSeq + uint64(i); uint64(len(m.parts)) != want-1 {
			return fmt.Errorf("part %d of checkpoint %d expected the stream at %d, it is at %d: %w", i, out.CheckpointSeq, want-1, len(m.parts), ErrFenced)
		}
		m.parts = append(m.parts, bytes.Clone(out.Parts[i]))
	}
	return nil
}

// CatchUp implements Stream.
func (m *MemStream) CatchUp(ctx context.Context, l *ledger.Ledger, keys *ledger.DataKeys) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resume(ctx, l); err != nil {
		return err
	}
	last := uint64(len(m.parts))
	for seq := l.ReplicaPosition() + 1; seq <= last; seq++ {
		part := m.parts[seq-1]
		if keys != nil {
			for _, id := range ledger.ReplicaKeyIDs(part) {
				raw, ok := m.keys[id]
				if ok && !keys.Has(id) {
					if err := keys.Import(id, raw); err != nil {
						return err
					}
				}
			}
		}
		if _, err := l.Apply(ctx, seq, part); err != nil {
			return fmt.Errorf("applying stream sequence %d: %w", seq, err)
		}
	}
	l.SkipIncomplete(last)
	return nil
}

// resume publishes what of l's outbox the stream lacks, or refuses a
// store whose last batch is not on the stream where it says.
func (m *MemStream) resume(ctx context.Context, l *ledger.Ledger) error {
	last, pos := uint64(len(m.parts)), l.ReplicaPosition()
	out, err := l.ReplicaOutbox(ctx)
	if err != nil {
		return err
	}
	if last >= pos {
		if out != nil && pos > 0 && out.LastSeq() == pos && !bytes.Equal(m.parts[pos-1], out.Parts[len(out.Parts)-1]) {
			return fmt.Errorf("stream sequence %d holds another batch than this store's checkpoint %d: %w", pos, out.CheckpointSeq, ErrDiverged)
		}
		return nil
	}
	if out == nil || out.LastSeq() != pos || last+1 < out.FirstSeq {
		return fmt.Errorf("this store is at stream sequence %d but the stream ends at %d: %w", pos, last, ErrDiverged)
	}
	for seq := out.FirstSeq; seq <= last; seq++ {
		if !bytes.Equal(m.parts[seq-1], out.Parts[seq-out.FirstSeq]) {
			return fmt.Errorf("stream sequence %d holds another batch than this store's checkpoint %d: %w", seq, out.CheckpointSeq, ErrDiverged)
		}
	}
	for id, raw := range out.DataKeys {
		m.keys[id] = bytes.Clone(raw)
	}
	return m.publish(out, int(last+1-out.FirstSeq))
}
