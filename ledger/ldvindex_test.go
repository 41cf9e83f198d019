package ledger_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
)

// TestProcessingActivities: the LDV index finds a trace's disclosures and a
// processing activity's, combines filters, pages by cursor, keeps to the
// disclosers it is given, refuses a query without an identifying filter,
// survives a reopen, and forgets an erased disclosure.
func TestProcessingActivities(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	ctx := context.Background()
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	var envs [][]byte
	var ds []*events.Disclosure
	for i := range 7 {
		_, d := e.Event(t)
		if i%2 == 0 {
			d.TraceID = trace
		}
		if i < 3 {
			d.ProcessingActivity = "https://register.example/pa/ldv-test"
		}
		envs = append(envs, e.Sign(t, d))
		ds = append(ds, d)
	}
	outs, err := e.SubmitEnvelopes(t, l, envs)
	if err != nil {
		t.Fatal(err)
	}
	check := func(l *ledger.Ledger, q ledger.LDVQuery, want ...int) uint64 {
		t.Helper()
		recs, next, more, err := l.ProcessingActivities(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) {
			t.Fatalf("%+v: %d records, want %d", q, len(recs), len(want))
		}
		for i, w := range want {
			if recs[i].Index != outs[w].Index || recs[i].Disclosure.ID != ds[w].ID {
				t.Errorf("%+v: record %d is leaf %d, want %d", q, i, recs[i].Index, outs[w].Index)
			}
		}
		if !more {
			return 0
		}
		return next
	}
	check(l, ledger.LDVQuery{TraceID: trace}, 0, 2, 4, 6)
	check(l, ledger.LDVQuery{ProcessingActivity: "https://register.example/pa/ldv-test"}, 0, 1, 2)
	check(l, ledger.LDVQuery{TraceID: trace, ProcessingActivity: "https://register.example/pa/ldv-test"}, 0, 2)
	check(l, ledger.LDVQuery{Pseudonym: ds[3].Subject.Pseudonym, TraceID: ds[3].TraceID}, 3)
	check(l, ledger.LDVQuery{TraceID: trace, Disclosers: []string{"no-such-party"}})
	// Pages of two: the cursor is the next page's first leaf.
	next := check(l, ledger.LDVQuery{TraceID: trace, Limit: 2}, 0, 2)
	if next != outs[4].Index {
		t.Fatalf("next page at %d, want %d", next, outs[4].Index)
	}
	if n := check(l, ledger.LDVQuery{TraceID: trace, Limit: 2, Start: next}, 4, 6); n != 0 {
		t.Errorf("a last page says more at %d", n)
	}
	if _, _, _, err := l.ProcessingActivities(ctx, ledger.LDVQuery{From: ds[0].OccurredAt}); !errors.Is(err, ledger.ErrNoLDVFilter) {
		t.Errorf("a query without an identifying filter: %v", err)
	}
	// The index is in the store: a reopened ledger finds the same.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	check(l, ledger.LDVQuery{TraceID: trace}, 0, 2, 4, 6)
	// An erased disclosure is not answered, and its keys are gone.
	if _, err := l.Erase(ctx, outs[2].Index, "avg-17-1-a"); err != nil {
		t.Fatal(err)
	}
	check(l, ledger.LDVQuery{TraceID: trace}, 0, 4, 6)
	check(l, ledger.LDVQuery{ProcessingActivity: "https://register.example/pa/ldv-test"}, 0, 1)
	tid, _ := hex.DecodeString(trace)
	prefix := append([]byte{'L', 1}, tid...)
	keys := 0
	if err := s.Scan(ctx, prefix, append(prefix, 0xff), func(_, _ []byte) error { keys++; return nil }); err != nil {
		t.Fatal(err)
	}
	if keys != 3 {
		t.Errorf("the store holds %d trace keys, want 3 after the erasure", keys)
	}
}
