package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// memReplicator keeps what an active ledger replicates, in order, as a
// stream would (sequences from 1), and can be told to fail.
type memReplicator struct {
	mu    sync.Mutex
	parts [][]byte
	fail  error
}

func (m *memReplicator) Replicate(_ context.Context, out *ledger.ReplicaOut) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if out.FirstSeq != uint64(len(m.parts))+1 {
		return errors.New("wrong position")
	}
	m.parts = append(m.parts, out.Parts...)
	return nil
}

func openStandby(t *testing.T, e *testledger.Env) *ledger.Ledger {
	t.Helper()
	s, err := pebblestore.Open(filepath.Join(t.TempDir(), "standby"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.OpenStandby(t.Context(), ledger.Config{Store: s, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); s.Close() })
	return l
}

// TestApplyChecksTheBatch: a standby applies an honest stream to the same
// head, and refuses (ErrReplicaMismatch) a part whose leaf record or
// checkpoint was changed, stores nothing of it, applies nothing after it
// and cannot be promoted.
func TestApplyChecksTheBatch(t *testing.T) {
	e := testledger.New(t)
	rep := &memReplicator{}
	l, s := e.Open(t, ledger.Config{Replicator: rep, IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	for range 3 {
		env, _ := e.Event(t)
		submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	}
	head := l.Head()

	good := openStandby(t, e)
	for i, p := range rep.parts {
		if _, err := good.Apply(t.Context(), uint64(i+1), p); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
	}
	if got := good.Head(); got.Size != head.Size || got.Root != head.Root {
		t.Fatalf("standby head %d, active %d", got.Size, head.Size)
	}
	out, err := l.ReplicaOutbox(t.Context())
	if err != nil || out == nil || !bytes.Equal(out.Parts[len(out.Parts)-1], rep.parts[len(rep.parts)-1]) || out.LastSeq() != l.ReplicaPosition() {
		t.Fatalf("outbox %+v, %v: want the last batch at position %d", out, err, l.ReplicaPosition())
	}

	for _, what := range []string{"leaf record", "checkpoint"} {
		t.Run(what, func(t *testing.T) {
			bad := openStandby(t, e)
			if _, err := bad.Apply(t.Context(), 1, rep.parts[0]); err != nil {
				t.Fatal(err)
			}
			p := bytes.Clone(rep.parts[1])
			// A leaf record's op is its key length (9), 'l', the index, the
			// value length and the record; the checkpoint's text starts with
			// the origin. Change one byte of either.
			marker := []byte(e.Demo.Signed.Covenant.Origin + "\n")
			if what == "leaf record" {
				i := bytes.Index(p, []byte{0x09, 'l'})
				if i < 0 {
					t.Fatal("no leaf record key in the part")
				}
				p[i+12] ^= 1 // the leaf record's entry type
			} else {
				i := bytes.Index(p, marker)
				if i < 0 {
					t.Fatal("no checkpoint in the part")
				}
				p[i+len(marker)] ^= 1 // the tree size line
			}
			if _, err := bad.Apply(t.Context(), 2, p); !errors.Is(err, ledger.ErrReplicaMismatch) {
				t.Fatalf("tampered %s: %v, want ErrReplicaMismatch", what, err)
			}
			if bad.Head().Size != 1 {
				t.Errorf("the standby moved to size %d on a tampered batch", bad.Head().Size)
			}
			if _, err := bad.Apply(t.Context(), 2, rep.parts[1]); err == nil {
				t.Error("the standby applied more after a mismatch")
			}
			if err := bad.Promote(t.Context()); err == nil {
				t.Error("a failed standby was promoted")
			}
		})
	}
}

// TestReplicatorFailureHalts: when the Replicator fails, the batch (durable
// locally) is never acknowledged, the head does not move and the
// sequencer stops.
func TestReplicatorFailureHalts(t *testing.T) {
	e := testledger.New(t)
	rep := &memReplicator{}
	l, s := e.Open(t, ledger.Config{Replicator: rep, IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	before := l.Head()
	rep.mu.Lock()
	rep.fail = errors.New("the quorum is gone")
	rep.mu.Unlock()
	env, _ := e.Event(t)
	p, err := l.Submit(t.Context(), []ledger.Submission{e.Submission(t, l, env)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(t.Context()); err == nil {
		t.Fatal("a batch that was not replicated was acknowledged")
	}
	<-l.Done()
	if l.Head() != before {
		t.Error("the head moved without replication")
	}
}

// FuzzReplicaPart: the parsers of what a standby reads from NATS never
// panic, whatever the bytes. Seeds: the parts of a real small log.
func FuzzReplicaPart(f *testing.F) {
	e := testledger.New(f)
	rep := &memReplicator{}
	l, s := e.Open(f, ledger.Config{Replicator: rep, IdleCosign: -1})
	env, _ := e.Event(f)
	p, err := l.Submit(f.Context(), []ledger.Submission{e.Submission(f, l, env)})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := p.Wait(f.Context()); err != nil {
		f.Fatal(err)
	}
	l.Close()
	s.Close()
	for _, part := range rep.parts {
		f.Add(part)
	}
	f.Add([]byte("SPRP\x01\x01\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ledger.ParseReplicaPart(b); err == nil && (p.Index >= p.Count || p.Count == 0) {
			t.Fatalf("parsed part %d of %d", p.Index, p.Count)
		}
		_ = ledger.ReplicaKeyIDs(b)
	})
}
