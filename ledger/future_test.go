package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
)

// futureEvent signs a fresh synthetic event that says it occurred at at.
func futureEvent(t *testing.T, e *testledger.Env, at time.Time) ([]byte, *events.Disclosure) {
	t.Helper()
	_, d := e.Event(t)
	d.OccurredAt = at.UTC()
	return e.Sign(t, d), d
}

// TestOccurredInFutureRefused: an event whose occurred_at lies beyond the
// skew (5 minutes by default) after its time of recording is refused as
// occurred_in_future, with a status record, and never enters the log;
// within the skew it is logged.
func TestOccurredInFutureRefused(t *testing.T) {
	e := testledger.New(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Now: func() time.Time { return now }})
	defer s.Close()
	defer l.Close()

	within, _ := futureEvent(t, e, now.Add(events.DefaultFutureSkew))
	hour, dHour := futureEvent(t, e, now.Add(time.Hour))
	far, dFar := futureEvent(t, e, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	out := submit(t, l, []ledger.Submission{e.Submission(t, l, within), e.Submission(t, l, hour), e.Submission(t, l, far)})
	if out[0].Err != nil {
		t.Fatalf("occurred_at at the skew: %v", out[0].Err)
	}
	for i, d := range []*events.Disclosure{dHour, dFar} {
		var re *events.RejectError
		if !errors.As(out[i+1].Err, &re) || re.Reason != events.ReasonOccurredInFuture {
			t.Fatalf("occurred_at %s: outcome %+v, want %s", d.OccurredAt, out[i+1], events.ReasonOccurredInFuture)
		}
		if strings.Contains(re.Error(), "-") {
			t.Errorf("occurred_at %s: message %q has a negative (overflowed) duration", d.OccurredAt, re.Error())
		}
		r, err := l.Rejected(context.Background(), d.Discloser, d.ID)
		if err != nil || r.Reason != events.ReasonOccurredInFuture || r.Party != d.Discloser {
			t.Errorf("status of the refused event: %+v, %v", r, err)
		}
		if _, err := l.LookupEvent(context.Background(), d.Discloser, d.ID); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("a refused event is in the id index: %v", err)
		}
	}
	if got := l.Head().Size; got != 2 {
		t.Fatalf("tree size %d, want 2 (the covenant and the event within the skew)", got)
	}
}

// TestOccurredInFutureNotReappliedToEarlierEvents: an event logged before
// the rule (here: under a wider skew) keeps its place: a retry of the same
// bytes is a duplicate with its leaf, and the audit, which opens and checks
// every stored event again, finds it in order with its
// occurred-after-recording finding, not refused.
func TestOccurredInFutureNotReappliedToEarlierEvents(t *testing.T) {
	e := testledger.New(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, FutureSkew: 48 * time.Hour, Now: func() time.Time { return now }})
	env, _ := futureEvent(t, e, now.Add(24*time.Hour))
	out := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	if out[0].Err != nil {
		t.Fatalf("within a 48-hour skew: %v", out[0].Err)
	}
	f, err := l.Findings(context.Background(), out[0].Index)
	if err != nil || len(f) != 1 || f[0].Rule != events.RuleOccurredAfterRecording {
		t.Fatalf("findings %+v, %v; want %s", f, err, events.RuleOccurredAfterRecording)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Today's ledger, default skew.
	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	again := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	if again[0].Err != nil || !again[0].Duplicate || again[0].Index != out[0].Index {
		t.Fatalf("retry of an event logged earlier: %+v, want a duplicate of leaf %d", again[0], out[0].Index)
	}
	rep := auditWith(t, e, l.AuditSource())
	if !rep.OK {
		t.Fatalf("audit: %v", rep.Problems)
	}
}
