package answer_test

import (
	"context"
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
)

// submit submits subs to l and waits for their outcomes.
func submit(t testing.TB, l *ledger.Ledger, subs []ledger.Submission) []ledger.Outcome {
	t.Helper()
	ctx := context.Background()
	p, err := l.Submit(ctx, subs)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	out, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return out
}
