package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
)

// servedLedger is a real ledger (Pebble on a temp dir) behind the HTTP API.
type servedLedger struct {
	env   *testledger.Env
	l     *ledger.Ledger
	store *pebblestore.Store
	srv   *httptest.Server
}

func serveTestLedger(t *testing.T, env *testledger.Env) *servedLedger {
	t.Helper()
	l, s := env.Open(t, ledger.Config{IdleCosign: -1})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Tokens: map[[32]byte]httpapi.Principal{
		httpapi.TokenHash("fg-token"): {Role: httpapi.RoleFG, Name: "fg"},
	}}))
	sl := &servedLedger{env: env, l: l, store: s, srv: srv}
	t.Cleanup(func() {
		srv.Close()
		l.Close()
		if sl.store != nil {
			sl.store.Close()
		}
	})
	return sl
}

// grow logs events until the tree has size leaves.
func (sl *servedLedger) grow(t *testing.T, size uint64) {
	t.Helper()
	ctx := context.Background()
	for sl.l.Head().Size < size {
		n := min(50, size-sl.l.Head().Size)
		subs := make([]ledger.Submission, n)
		for i := range subs {
			env, _ := sl.env.Event(t)
			subs[i] = sl.env.Submission(t, sl.l, env)
		}
		p, err := sl.l.Submit(ctx, subs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// twinEnv returns a test log with the same covenant and log keys as e but
// its own store and other events: what a log operator who forks the log
// would serve.
func twinEnv(t *testing.T, e *testledger.Env) *testledger.Env {
	t.Helper()
	twin := testledger.New(t)
	twin.Demo, twin.LogSkey, twin.LogVkey, twin.CosSkey, twin.CosVkey = e.Demo, e.LogSkey, e.LogVkey, e.CosSkey, e.CosVkey
	twin.Keys, twin.Signer = e.Keys, e.Signer
	gen, err := synth.New(e.Demo.Signed.Covenant, e.Demo.SubjectKey, 99, 50)
	if err != nil {
		t.Fatal(err)
	}
	twin.Gen = gen
	return twin
}

// metricValue reads a gauge's or counter's value.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func readState(t *testing.T, mon *monitor) *verifier.Checkpoint {
	t.Helper()
	cp, err := mon.loadState()
	if err != nil || cp == nil {
		t.Fatalf("state: %v, %v", cp, err)
	}
	return cp
}

func wantAlarm(t *testing.T, mon *monitor, kind string) {
	t.Helper()
	_, err := mon.check(context.Background())
	var alarm *monitorAlarm
	if !errors.As(err, &alarm) || alarm.kind != kind {
		t.Fatalf("want a %s alarm, got %v", kind, err)
	}
	if v := metricValue(t, mon.m.alarm.WithLabelValues(kind)); v != 1 {
		t.Errorf("spoor_monitor_alarm{kind=%q} = %v", kind, v)
	}
}

func TestMonitor(t *testing.T) {
	ctx := context.Background()
	a := serveTestLedger(t, testledger.New(t))
	a.grow(t, 21)
	state := filepath.Join(t.TempDir(), "checkpoint.state")
	mon := &monitor{client: &verifier.Client{URL: a.srv.URL, Keys: a.env.Keys}, state: state,
		log: slog.New(slog.DiscardHandler), m: newMonitorMetrics()}

	// First use: the current checkpoint is trusted and kept.
	out, err := mon.check(ctx)
	if err != nil || !out.first || out.cp.Size != 21 {
		t.Fatalf("first check: %+v, %v", out, err)
	}
	// Growth across a tile boundary is proven consistent from the tiles.
	a.grow(t, 261)
	out, err = mon.check(ctx)
	if err != nil || out.first || out.grewFrom != 21 || out.cp.Size != 261 {
		t.Fatalf("growth: %+v, %v", out, err)
	}
	if _, err := mon.check(ctx); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	good := readState(t, mon)
	if good.Size != 261 || good.Hash != a.l.Head().Root {
		t.Fatalf("state holds size %d", good.Size)
	}
	if v := metricValue(t, mon.m.treeSize); v != 261 {
		t.Errorf("verified tree size metric %v", v)
	}

	// A second ledger with the same keys and other events, served to the
	// monitor in place of the first.
	b := serveTestLedger(t, twinEnv(t, a.env))
	mon.client.URL = b.srv.URL
	b.grow(t, 101)
	wantAlarm(t, mon, alarmRollback)
	b.grow(t, 261)
	wantAlarm(t, mon, alarmFork) // same size, another root
	b.grow(t, 300)
	wantAlarm(t, mon, alarmFork) // larger, but does not extend the verified tree
	if got := readState(t, mon); got.Size != good.Size || got.Hash != good.Hash {
		t.Fatalf("the state was replaced after an alarm: size %d", got.Size)
	}
	if v := metricValue(t, mon.m.alarms.WithLabelValues(alarmFork)); v != 2 {
		t.Errorf("fork alarms counted %v", v)
	}

	// A checkpoint signed by other keys.
	other := testledger.New(t)
	forged, err := other.Signer.Sign(a.l.Origin(), 400, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(forged) }))
	defer bad.Close()
	mon.client.URL = bad.URL
	wantAlarm(t, mon, alarmBadSignature)

	// Back on the real log, the monitor goes on from the kept state, and
	// the alarm gauge drops.
	a.grow(t, 270)
	mon.client.URL = a.srv.URL
	if out, err := mon.check(ctx); err != nil || out.cp.Size != 270 || out.grewFrom != 261 {
		t.Fatalf("back on the real log: %+v, %v", out, err)
	}
	if v := metricValue(t, mon.m.alarm.WithLabelValues(alarmBadSignature)); v != 0 {
		t.Errorf("alarm gauge still %v", v)
	}
}

func TestMonitorCommandOnce(t *testing.T) {
	ctx := context.Background()
	a := serveTestLedger(t, testledger.New(t))
	a.grow(t, 20)
	dir := t.TempDir()
	vkey, cosVkey := filepath.Join(dir, "log.vkey"), filepath.Join(dir, "cosigner.vkey")
	if err := os.WriteFile(vkey, []byte(a.env.LogVkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cosVkey, []byte(a.env.CosVkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &monitorFlags{url: a.srv.URL, vkey: "@" + vkey, cosVkey: "@" + cosVkey, state: filepath.Join(dir, "state"),
		interval: time.Second, once: true, timeout: 10 * time.Second}
	log := slog.New(slog.DiscardHandler)
	if err := runMonitor(ctx, log, f); err != nil {
		t.Fatalf("first run: %v", err)
	}
	a.grow(t, 40)
	if err := runMonitor(ctx, log, f); err != nil {
		t.Fatalf("second run: %v", err)
	}
	b := serveTestLedger(t, twinEnv(t, a.env))
	b.grow(t, 60)
	f.url = b.srv.URL
	err := runMonitor(ctx, log, f)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitMonitorAlarm {
		t.Fatalf("fork: want exit status %d, got %v", exitMonitorAlarm, err)
	}
	// An unreachable log is an error, not an alarm.
	f.url = "http://127.0.0.1:1"
	if err := runMonitor(ctx, log, f); err == nil || errors.As(err, &ee) {
		t.Fatalf("unreachable: %v", err)
	}
}
