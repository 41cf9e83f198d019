package monitor

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/witnesstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
	"github.com/spoor-ledger/spoor/witness"
)

// witnessedLog is a real ledger whose covenant version 2 names three real
// witnesses (2 of 3), a Witnesser beside it, and its HTTP API.
type witnessedLog struct {
	env *testledger.Env
	l   *ledger.Ledger
	ws  []*witnesstest.Witness
	srv *httptest.Server
}

func newWitnessedLog(t *testing.T) *witnessedLog {
	t.Helper()
	env := testledger.New(t)
	logCfg := witness.LogConfig{Origin: env.Keys.Log.Name(), VKey: env.LogVkey}
	var ws []*witnesstest.Witness
	for _, name := range []string{"fg-a", "fg-b", "fg-c"} {
		ws = append(ws, witnesstest.Start(t, name, logCfg))
	}
	l1, s1 := env.Open(t, ledger.Config{IdleCosign: -1})
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	l, s := env.Open(t, ledger.Config{IdleCosign: -1, Covenant: env.CovenantWithPolicy(t, witnesstest.Policy(env.LogVkey, 2, ws...))})
	t.Cleanup(func() { l.Close(); s.Close() })
	wit, err := witnessing.New(witnessing.Config{Ledger: l, Interval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = wit.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l}))
	t.Cleanup(srv.Close)
	return &witnessedLog{env: env, l: l, ws: ws, srv: srv}
}

// growWitnessed logs n events and waits until they are witnessed.
func (wl *witnessedLog) growWitnessed(t *testing.T, n int) *ledger.Head {
	t.Helper()
	if _, err := wl.env.SubmitEvents(t, wl.l, n); err != nil {
		t.Fatal(err)
	}
	for {
		if h, w := wl.l.Head(), wl.l.WitnessedHead(); w != nil && w.Size == h.Size {
			return w
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test ended while waiting for witnesses")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestMonitorWitnessFork plays a rogue operator holding the log key who
// gets one witness to cosign a fork that runs ahead of the log: while the
// fork is larger than the log's checkpoint the monitor keeps it (no false
// alarm); once the log grows past it, the log's tiles contradict it and
// the monitor raises a witness-fork alarm naming that witness, and only
// that one. Honest witnesses raise nothing.
func TestMonitorWitnessFork(t *testing.T) {
	wl := newWitnessedLog(t)
	w := wl.growWitnessed(t, 30)

	var endpoints []WitnessEndpoint
	for _, ws := range wl.ws {
		endpoints = append(endpoints, WitnessEndpoint{Name: ws.Name, URL: ws.URL})
	}
	mon, err := New(Config{Client: &tlogclient.Client{URL: wl.srv.URL, Keys: wl.env.Keys},
		StatePath: filepath.Join(t.TempDir(), "state"), Witnesses: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := mon.Check(ctx); err != nil {
		t.Fatalf("first check, honest witnesses: %v", err)
	}

	// The rogue tree: the log's first w.Size leaves, then forged ones,
	// signed with the log key alone (all a witness checks).
	rogue := memtree.New()
	for i := uint64(0); i < w.Size; i++ {
		rec, err := wl.l.LeafRecordBytes(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		rogue.Append(t, rec)
	}
	for range 5 {
		rogue.Append(t, []byte("a forged leaf that the real log never had"))
	}
	logSigner, err := note.NewSigner(wl.env.LogSkey)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := note.Sign(&note.Note{Text: string(verifier.FormatCheckpoint(wl.l.Origin(), uint64(rogue.Size()), rogue.Root(t, rogue.Size())))}, logSigner)
	if err != nil {
		t.Fatal(err)
	}
	victim := wl.ws[0]
	req := &witness.AddCheckpointRequest{OldSize: w.Size, Proof: rogue.Proof(t, int64(w.Size), rogue.Size()), Checkpoint: forged}
	if _, err := victim.W.Add(t.Context(), req); err != nil {
		t.Fatalf("the witness refused the rogue extension it cannot tell from a real one: %v", err)
	}

	// The fork is ahead of the log: nothing to contradict it yet.
	if _, err := mon.Check(ctx); err != nil {
		t.Fatalf("a witness ahead of the log raised: %v", err)
	}
	if p := mon.pending[victim.Name]; p == nil || p.Size != uint64(rogue.Size()) {
		t.Fatalf("the monitor does not keep the witness's larger checkpoint: %+v", p)
	}

	// The log grows past it (the other two witnesses keep the quorum).
	got := wl.growWitnessed(t, 10)
	if got.Size <= uint64(rogue.Size()) {
		t.Fatalf("witnessed size %d, want beyond the fork's %d", got.Size, rogue.Size())
	}
	_, err = mon.Check(ctx)
	var alarm *Alarm
	if !errors.As(err, &alarm) || alarm.Kind != WitnessFork || alarm.Witness != victim.Name {
		t.Fatalf("want a witness-fork alarm for %s, got %v", victim.Name, err)
	}
	if !strings.Contains(alarm.Detail, "does not extend") {
		t.Errorf("alarm detail: %s", alarm.Detail)
	}
	if v := metricValue(t, mon.m.alarm.WithLabelValues(string(WitnessFork))); v != 1 {
		t.Errorf("spoor_monitor_alarm{kind=witness-fork} = %v", v)
	}
	// The log itself is fine: its checkpoint was verified and kept.
	if st := readState(t, mon); st.Size != got.Size {
		t.Errorf("state size %d, want the log's %d", st.Size, got.Size)
	}

	// The same check without the forked witness: no alarm.
	honest, err := New(Config{Client: &tlogclient.Client{URL: wl.srv.URL, Keys: wl.env.Keys},
		StatePath: filepath.Join(t.TempDir(), "state"), Witnesses: endpoints[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := honest.Check(ctx); err != nil {
		t.Fatalf("honest witnesses raised: %v", err)
	}
}

// TestMonitorWitnessAway: a witness that is down, or holds nothing of the
// log, is logged and counted, never an alarm.
func TestMonitorWitnessAway(t *testing.T) {
	wl := newWitnessedLog(t)
	wl.growWitnessed(t, 5)
	wl.ws[2].Stop()
	mon, err := New(Config{Client: &tlogclient.Client{URL: wl.srv.URL, Keys: wl.env.Keys},
		StatePath: filepath.Join(t.TempDir(), "state"), Witnesses: []WitnessEndpoint{
			{Name: "down", URL: wl.ws[2].URL},
			{Name: "not-this-log", URL: wl.srv.URL + "/nowhere"},
			{Name: wl.ws[0].Name, URL: wl.ws[0].URL}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.Check(context.Background()); err != nil {
		t.Fatalf("a witness away raised: %v", err)
	}
	if v := metricValue(t, mon.m.witnessErrors); v != 1 {
		t.Errorf("spoor_monitor_witness_errors_total = %v, want 1 (the one down; a 404 holds nothing)", v)
	}
}
