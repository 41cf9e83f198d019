package monitor

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// The tests run the monitor against real ledgers served over HTTP: only
// the tests import the ledger (internal/testledger); the package does not.

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

func readState(t *testing.T, mon *Monitor) *verifier.Checkpoint {
	t.Helper()
	cp, err := mon.State()
	if err != nil || cp == nil {
		t.Fatalf("state: %v, %v", cp, err)
	}
	return cp
}

func wantAlarm(t *testing.T, mon *Monitor, kind AlarmKind) {
	t.Helper()
	_, err := mon.Check(context.Background())
	var alarm *Alarm
	if !errors.As(err, &alarm) || alarm.Kind != kind {
		t.Fatalf("want a %s alarm, got %v", kind, err)
	}
	if v := metricValue(t, mon.m.alarm.WithLabelValues(string(kind))); v != 1 {
		t.Errorf("spoor_monitor_alarm{kind=%q} = %v", kind, v)
	}
}

func TestMonitor(t *testing.T) {
	ctx := context.Background()
	a := testledger.New(t).Serve(t)
	a.Grow(t, 21)
	state := filepath.Join(t.TempDir(), "checkpoint.state")
	client := &tlogclient.Client{URL: a.Srv.URL, Keys: a.Env.Keys}
	mon, err := New(Config{Client: client, StatePath: state, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}

	// First use: the current checkpoint is trusted and kept.
	out, err := mon.Check(ctx)
	if err != nil || !out.First || out.Checkpoint.Size != 21 {
		t.Fatalf("first check: %+v, %v", out, err)
	}
	// Growth across a tile boundary is proven consistent from the tiles.
	a.Grow(t, 261)
	out, err = mon.Check(ctx)
	if err != nil || out.First || out.GrewFrom != 21 || out.Checkpoint.Size != 261 {
		t.Fatalf("growth: %+v, %v", out, err)
	}
	if _, err := mon.Check(ctx); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	good := readState(t, mon)
	if good.Size != 261 || good.Hash != a.L.Head().Root {
		t.Fatalf("state holds size %d", good.Size)
	}
	if v := metricValue(t, mon.m.treeSize); v != 261 {
		t.Errorf("verified tree size metric %v", v)
	}

	// A second ledger with the same keys and other events, served to the
	// monitor in place of the first.
	b := a.Env.Twin(t).Serve(t)
	client.URL = b.Srv.URL
	b.Grow(t, 101)
	wantAlarm(t, mon, Rollback)
	b.Grow(t, 261)
	wantAlarm(t, mon, Fork) // same size, another root
	b.Grow(t, 300)
	wantAlarm(t, mon, Fork) // larger, but does not extend the verified tree
	if got := readState(t, mon); got.Size != good.Size || got.Hash != good.Hash {
		t.Fatalf("the state was replaced after an alarm: size %d", got.Size)
	}
	if v := metricValue(t, mon.m.alarms.WithLabelValues(string(Fork))); v != 2 {
		t.Errorf("fork alarms counted %v", v)
	}

	// A checkpoint signed by other keys.
	other := testledger.New(t)
	forged, err := other.Signer.Sign(a.L.Origin(), 400, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(forged) }))
	defer bad.Close()
	client.URL = bad.URL
	wantAlarm(t, mon, BadSignature)

	// Back on the real log, the monitor goes on from the kept state, and
	// the alarm gauge drops.
	a.Grow(t, 270)
	client.URL = a.Srv.URL
	if out, err := mon.Check(ctx); err != nil || out.Checkpoint.Size != 270 || out.GrewFrom != 261 {
		t.Fatalf("back on the real log: %+v, %v", out, err)
	}
	if v := metricValue(t, mon.m.alarm.WithLabelValues(string(BadSignature))); v != 0 {
		t.Errorf("alarm gauge still %v", v)
	}
}

func TestNewNeedsClientAndState(t *testing.T) {
	if _, err := New(Config{StatePath: "x"}); err == nil {
		t.Error("New without a Client")
	}
	if _, err := New(Config{Client: &tlogclient.Client{}}); err == nil {
		t.Error("New without a StatePath")
	}
}
