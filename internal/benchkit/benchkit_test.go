package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunSmall runs the whole bench on a few hundred events: every phase
// must complete and report figures that are consistent with each other.
// It asserts no speed (the machine decides that), only completeness.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench starts NATS and three ledgers; skipped with -short")
	}
	rep, err := Run(context.Background(), Config{
		Dir: t.TempDir(), Events: 300, OfferedRate: 1000, OfferedSeconds: 0.2,
		StageSample: 300, InzageSubjects: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 300 || rep.OfferedEvents != 200 {
		t.Errorf("events %d + %d, want 300 + 200", rep.Events, rep.OfferedEvents)
	}
	if len(rep.Stages) != 4 {
		t.Fatalf("%d stages, want 4", len(rep.Stages))
	}
	for _, s := range rep.Stages {
		if s.Events != 300 || s.Rate <= 0 {
			t.Errorf("stage %s: %d events at %.0f/s", s.Name, s.Events, s.Rate)
		}
	}
	if rep.Ceilings.Composed <= 0 || rep.Ceilings.LowestStage == "" {
		t.Errorf("ceilings not computed: %+v", rep.Ceilings)
	}
	pl := rep.Pipeline
	if pl.EventsPerSec <= 0 || pl.Latency.Samples != 300 || pl.Offered.Latency.Samples != 200 || pl.OfferedCompacted.Latency.Samples != 200 {
		t.Errorf("pipeline: %+v", pl)
	}
	if pl.Latency.P50ms > pl.Latency.P99ms || pl.Latency.P99ms > pl.Latency.Maxms {
		t.Errorf("latency quantiles out of order: %+v", pl.Latency)
	}
	if pl.Rejected != 0 {
		t.Errorf("%d events rejected", pl.Rejected)
	}
	if rep.LogCore.Entries != 300 || rep.LogCore.EntriesPerSec <= 0 || rep.LogCore.RandomOrderPerSec <= 0 {
		t.Errorf("log core: %+v", rep.LogCore)
	}
	// The covenant entry plus every event published: the full load, the
	// first offered load, then (after inzage's first run) the second.
	// The audit reads every leaf: the subject index's heads too.
	if rep.Resources.StoredEvents != 701 || rep.Inzage.StoredEvents != 501 || rep.Audit.Leaves < 701 {
		t.Errorf("stored %d / %d events, the audit read %d leaves; want 701 / 501 and at least 701", rep.Resources.StoredEvents, rep.Inzage.StoredEvents, rep.Audit.Leaves)
	}
	if rep.Inzage.Subjects != 5 || rep.Inzage.EventsPerSubject <= 0 {
		t.Errorf("inzage: %+v", rep.Inzage)
	}
	// The same children again on the compacted store, which holds the
	// second offered load too.
	if izc := rep.InzageCompacted; izc.Subjects != 5 || izc.EventsPerSubject < rep.Inzage.EventsPerSubject ||
		izc.StoredEvents != 701 || izc.Latency.Samples != 5 {
		t.Errorf("inzage after compaction: %+v", izc)
	}
	if !rep.Audit.OK || rep.Audit.MerkleLeavesPerSec <= 0 || rep.Audit.EventsPerSec <= 0 {
		t.Errorf("audit: %+v", rep.Audit)
	}
	res := rep.Resources
	if res.NATSStreamMsgs != 0 || res.LedgerDiskBytes <= 0 || res.PeakRSSBytes <= 0 {
		t.Errorf("resources: %+v", res)
	}
	if len(rep.Targets) != 11 {
		t.Errorf("%d targets, want 11", len(rep.Targets))
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(a) stage costs", "composed ceiling", "(b) full pipeline", "(c) log core", "(d) inzage", "(e) audit", "(f) peak RSS", "targets (issue 7;"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text report lacks %q", want)
		}
	}
	// Without witnesses the report is as it was before they came.
	if rep.Witnessing != nil || strings.Contains(text.String(), "(g)") || strings.Contains(text.String(), "witness") {
		t.Errorf("a run without witnesses reports on witnesses:\n%s", text.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("the report does not encode as JSON: %v", err)
	}
}

// TestRunWithWitnesses runs the bench with three real witnesses, two of
// which must cosign: (g) must complete, time every event to a witnessed
// checkpoint, and add its three targets; it asserts no speed.
func TestRunWithWitnesses(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench starts NATS, witnesses and six ledgers; skipped with -short")
	}
	rep, err := Run(context.Background(), Config{
		Dir: t.TempDir(), Events: 300, OfferedRate: 1000, OfferedSeconds: 0.2,
		StageSample: 300, InzageSubjects: 5, Witnesses: 3, Quorum: 2, WitnessInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := rep.Witnessing
	if w == nil {
		t.Fatal("no (g) in the report")
	}
	if w.Witnesses != 3 || w.Quorum != 2 || w.IntervalMs != 5 || w.Events != 300 {
		t.Errorf("witnessing: %+v", w)
	}
	if w.WithoutBefore <= 0 || w.With <= 0 || w.WithoutAfter <= 0 || w.Ratio <= 0 {
		t.Errorf("full-load rates: %+v", w)
	}
	if w.FullLoadWitnessed.Samples != 300 || w.Offered.Latency.Samples != 200 || w.OfferedWitnessed.Samples != 200 {
		t.Errorf("samples: full load %d, offered %d and %d witnessed", w.FullLoadWitnessed.Samples, w.Offered.Latency.Samples, w.OfferedWitnessed.Samples)
	}
	if l := w.OfferedWitnessed; l.P50ms <= 0 || l.P50ms > l.P99ms || l.P99ms > l.Maxms {
		t.Errorf("witnessed latency: %+v", l)
	}
	if w.Rounds.Witnessed < 1 {
		t.Errorf("rounds: %+v", w.Rounds)
	}
	if len(rep.Targets) != 14 {
		t.Errorf("%d targets, want 14", len(rep.Targets))
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(g) witnesses: 3 Spoor witnesses", "2 of 3 must cosign", "to the witnessed checkpoint:",
		"issue 20's with witnesses", "witnessed latency p50 at offered", "pipeline with witnesses"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestWitnessConfigRefused: a quorum that can never be met is refused
// before anything runs.
func TestWitnessConfigRefused(t *testing.T) {
	for _, cfg := range []Config{{Dir: t.TempDir(), Witnesses: 2, Quorum: 3}, {Dir: t.TempDir(), Witnesses: -1}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%d witnesses, quorum %d) started", cfg.Witnesses, cfg.Quorum)
		}
	}
}

func TestLatencyOf(t *testing.T) {
	if l := latencyOf(nil); l.Samples != 0 {
		t.Errorf("empty: %+v", l)
	}
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf(ds)
	if l.Samples != 100 || l.P50ms != 50 || l.P99ms != 99 || l.Maxms != 100 {
		t.Errorf("latencyOf(1..100 ms) = %+v, want p50 50, p99 99, max 100", l)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("latencyOf reordered its argument")
	}
}

// lockedBuffer is a bytes.Buffer safe for the progress goroutine and the
// test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestProgressPhasesEnd: phases started and ended in quick succession,
// with the ticker firing all the while, each end returns and prints the
// phase's final line. (The ticker goroutine once read the stop channel from
// the struct, which end had already cleared: the bench then hung at the end
// of a phase.)
func TestProgressPhasesEnd(t *testing.T) {
	var out lockedBuffer
	p := &progress{w: &out, every: time.Microsecond}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			p.phase(fmt.Sprintf("phase %d", i), 10)
			p.add(10)
			p.end()
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a phase's end did not return: the progress goroutine missed its stop")
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if got := strings.Count(out.b.String(), "(100%)"); got < 2000 {
		t.Fatalf("%d phases ended with their final line, want 2000", got)
	}
}
