package ledger_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/witnesstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/witness"
)

// TestStandbyServesTheWitnessedHead: the cosignatures the active gathered
// travel in the replicated stream, so a standby that applied it serves the
// very same witnessed checkpoint and finds it by size.
func TestStandbyServesTheWitnessedHead(t *testing.T) {
	e := testledger.New(t)
	logCfg := witness.LogConfig{Origin: e.Keys.Log.Name(), VKey: e.LogVkey}
	ws := []*witnesstest.Witness{witnesstest.Start(t, "fg-a", logCfg), witnesstest.Start(t, "fg-b", logCfg), witnesstest.Start(t, "fg-c", logCfg)}
	rep := &memReplicator{}
	l1, s1 := e.Open(t, ledger.Config{Replicator: rep, IdleCosign: -1})
	l1.Close()
	s1.Close()
	l, s := e.Open(t, ledger.Config{Replicator: rep, IdleCosign: -1, Covenant: e.CovenantWithPolicy(t, witnesstest.Policy(e.LogVkey, 2, ws...))})
	defer s.Close()
	defer l.Close()
	wit, err := witnessing.New(witnessing.Config{Ledger: l, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = wit.Run(ctx); close(done) }()
	for range 3 {
		env, _ := e.Event(t)
		submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	}
	for w := l.WitnessedHead(); w == nil || w.Size < l.Head().Size; w = l.WitnessedHead() {
		select {
		case <-t.Context().Done():
			t.Fatal("never witnessed")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
	want := l.WitnessedHead()

	standby := openStandby(t, e)
	if standby.WitnessedHead() != nil {
		t.Fatal("an empty standby has a witnessed head")
	}
	rep.mu.Lock()
	parts := append([][]byte(nil), rep.parts...)
	rep.mu.Unlock()
	for i, p := range parts {
		if _, err := standby.Apply(t.Context(), uint64(i+1), p); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
	}
	got := standby.WitnessedHead()
	if got == nil || got.Seq != want.Seq || !bytes.Equal(got.Note, want.Note) {
		t.Fatalf("the standby's witnessed head is %+v, the active's %d", got, want.Seq)
	}
	if h, ok := standby.PublicHead(); !ok || !bytes.Equal(h.Note, want.Note) {
		t.Fatal("the standby does not serve the witnessed checkpoint as its public head")
	}
	if w, err := standby.FirstWitnessedCovering(t.Context(), want.Size-1); err != nil || w.Size > want.Size {
		t.Fatalf("the standby cannot find the first witnessed checkpoint of leaf %d: %v", want.Size-1, err)
	}
}
