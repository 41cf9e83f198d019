package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// TestAnswerRetention: an inzage answer's body is kept for the covenant's
// answer retention (the demo covenant sets none: the longest disclosure
// retention, 1825 days) and then tombstoned by the retention job under
// verifier.AnswerRetentionRule, with the bundle kept beside it; the
// request stays released (never answered twice), a download answers
// ErrAnswerErased, and the FG's audit accepts the tombstone and counts the
// erased answer.
func TestAnswerRetention(t *testing.T) {
	e := testledger.New(t)
	clock := &fakeClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Now: clock.Now})
	defer s.Close()
	defer l.Close()
	ctx := context.Background()
	cov, _ := l.Covenant()
	days := cov.Covenant.AnswerRetentionDays()
	if days != 1825 {
		t.Fatalf("the demo covenant's answer retention is %d days, want the longest disclosure retention, 1825", days)
	}
	a := answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	e.Gen.Now = clock.Now()
	var child *events.Disclosure
	for range 3 {
		_, d := e.Event(t)
		for d.SubjectAgeBand == events.Age16Plus {
			_, d = e.Event(t)
		}
		if child == nil {
			child = d
		}
		d.Subject = child.Subject
		d.SubjectAgeBand = child.SubjectAgeBand
		submit(t, l, []ledger.Submission{e.Submission(t, l, e.Sign(t, d))})
	}
	scope, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	ar := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: child.Subject.KeyID, Pseudonym: child.Subject.Pseudonym}},
		RequestedBy: "desk-1", RequestedByCredential: "1"}
	if err := a.RegisterAccess(ctx, ar); err != nil {
		t.Fatal(err)
	}
	r, err := a.ReleaseAccess(ctx, scope, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, answer.Release{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AccessBundle(ctx, r); err != nil {
		t.Fatal(err)
	}
	idx := *r.AnswerIndex
	// An answer is erased under its own rule only: not on request.
	if _, err := l.Erase(ctx, idx, "avg-17-1-a"); err == nil {
		t.Fatal("an erasure on request of an answer entry went through")
	}

	// A day before the term: kept.
	clock.Add(time.Duration(days-1) * 24 * time.Hour)
	rep, err := l.RunRetention(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ByRule[verifier.AnswerRetentionRule] != 0 {
		t.Fatalf("the answer was erased a day before its term: %+v", rep)
	}
	if _, err := a.AccessBundle(ctx, r); err != nil {
		t.Fatalf("download a day before the term: %v", err)
	}

	// Past the term: tombstoned, with the kept bundle.
	clock.Add(2 * 24 * time.Hour)
	if rep, err = l.RunRetention(ctx, false, nil); err != nil {
		t.Fatal(err)
	}
	if rep.ByRule[verifier.AnswerRetentionRule] != 1 {
		t.Fatalf("retention past the term: %+v, want the answer tombstoned", rep)
	}
	tomb, err := l.ErasedBy(ctx, idx)
	if err != nil {
		t.Fatalf("no tombstone for answer %d: %v", idx, err)
	}
	if rec, err := l.LeafRecord(ctx, tomb); err != nil || rec.Type != verifier.EntryTombstone || rec.RuleID != verifier.AnswerRetentionRule || rec.ErasedIndex != idx {
		t.Fatalf("tombstone %d: %+v, %v", tomb, rec, err)
	}
	if _, err := l.Entry(ctx, idx); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the answer body is still stored: %v", err)
	}
	if _, err := l.Record(ctx, ledger.RecordAnswerBundle, r.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the kept bundle is still stored: %v", err)
	}
	if _, err := a.AccessBundle(ctx, r); !errors.Is(err, answer.ErrAnswerErased) {
		t.Fatalf("download after the erasure: %v, want ErrAnswerErased", err)
	}
	if _, err := a.ReleaseAccess(ctx, scope, r.ID, answer.DeskUser{Name: "desk-3", Credential: "3"}, answer.Release{}); !errors.Is(err, answer.ErrAccessReleased) {
		t.Fatalf("a release after the erasure: %v, want ErrAccessReleased", err)
	}
	// Run again: nothing more to do.
	if rep, err = l.RunRetention(ctx, false, nil); err != nil || rep.ByRule[verifier.AnswerRetentionRule] != 0 {
		t.Fatalf("a second run: %+v, %v", rep, err)
	}

	arep, err := audit.Run(ctx, l.AuditSource(), audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !arep.OK || arep.Entries.Answers != 1 || arep.Entries.AnswersErased != 1 || len(arep.Answers) != 0 {
		t.Fatalf("the audit after the answer's erasure: ok %v, answers %d (erased %d), listed %d, problems %v",
			arep.OK, arep.Entries.Answers, arep.Entries.AnswersErased, len(arep.Answers), arep.Problems)
	}
}
