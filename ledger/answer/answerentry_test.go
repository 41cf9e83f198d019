package answer_test

import (
	"bytes"
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

// releasedAnswer registers and releases an inzage request about a child
// with two disclosures (one of them withheld) and returns the bundle.
func releasedAnswer(t *testing.T) (*testledger.Env, *ledger.Ledger, *answer.Service, *answer.AccessRequest, []byte) {
	t.Helper()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	t.Cleanup(func() { l.Close(); s.Close() })
	a := answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	child := e.Gen.Children()[0]
	var idx []uint64
	for range 3 {
		env, _ := eventAbout(t, e, child)
		out := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
		idx = append(idx, out[0].Index)
	}
	if _, err := e.SubmitEvents(t, l, 20); err != nil {
		t.Fatal(err)
	}
	scope, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	ar := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: child.Pseudonym}},
		RequestedBy: "desk-1", RequestedByCredential: "1"}
	if err := a.RegisterAccess(t.Context(), ar); err != nil {
		t.Fatal(err)
	}
	r, err := a.ReleaseAccess(t.Context(), scope, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, answer.Release{Withheld: []answer.Withhold{{Index: idx[1], Ground: verifier.WithholdAVG23}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := a.AccessBundle(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return e, l, a, r, data
}

// TestAnswerOnTheRecord: a release appends one answer entry; the bundle is
// v2, carries it with its proof, verifies, and names what it says; a
// second download by the other desk user is the same bytes; a second
// release is refused and logs nothing; the FG's audit lists the answer
// with its withholding.
func TestAnswerOnTheRecord(t *testing.T) {
	e, l, a, r, data := releasedAnswer(t)
	if r.AnswerIndex == nil {
		t.Fatal("the released request names no answer entry")
	}
	vb, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	if vb.Bundle.Format != verifier.BundleFormatV2 || vb.Answer == nil || vb.Answer.Index != *r.AnswerIndex {
		t.Fatalf("format %s, answer %+v: want a v2 bundle proving answer entry %d", vb.Bundle.Format, vb.Answer, *r.AnswerIndex)
	}
	if len(vb.Disclosures) != 2 || len(vb.Withheld) != 1 || vb.Answer.RequestedBy == vb.Answer.ReleasedBy {
		t.Fatalf("%d disclosures, %d withheld; desk users %s and %s", len(vb.Disclosures), len(vb.Withheld), vb.Answer.RequestedBy, vb.Answer.ReleasedBy)
	}
	again, err := a.AccessBundle(t.Context(), r)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("the second download differs (%v)", err)
	}
	before := l.Head().Size
	scope, _ := a.DeskScope("")
	if _, err := a.ReleaseAccess(t.Context(), scope, r.ID, answer.DeskUser{Name: "desk-3", Credential: "3"}, answer.Release{}); !errors.Is(err, answer.ErrAccessReleased) {
		t.Fatalf("a second release: %v, want ErrAccessReleased", err)
	}
	// The store's own record of the answer entry, and no second one.
	if idx, err := l.AnswerEntry(t.Context(), r.ID); err != nil || idx != *r.AnswerIndex {
		t.Fatalf("answer entry of the request: %d, %v", idx, err)
	}
	if _, _, err := l.AppendAnswer(t.Context(), &ledger.AnswerRequest{RequestID: r.ID, Body: vb.Bundle.Answer.Body}); err != nil {
		t.Fatal(err)
	}
	if l.Head().Size != before {
		t.Fatalf("appending the same request's answer again grew the log from %d to %d", before, l.Head().Size)
	}
	rep, err := audit.Run(t.Context(), l.AuditSource(), audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Entries.Answers != 1 || len(rep.Answers) != 1 || rep.Answers[0].RequestID != r.ID ||
		len(rep.Answers[0].Withheld) != 1 || rep.Answers[0].Withheld[0].Ground != verifier.WithholdAVG23 {
		t.Fatalf("the audit: ok %v, %d answers %+v, problems %v", rep.OK, rep.Entries.Answers, rep.Answers, rep.Problems)
	}
}

// TestAnswerBindsTheMetadata: each change to a v2 bundle's metadata the
// issue names is refused (ErrAnswer); the same change to a v1 bundle,
// whose metadata nothing proves, still verifies: what v2 closes.
func TestAnswerBindsTheMetadata(t *testing.T) {
	e, _, _, _, data := releasedAnswer(t)
	for name, change := range map[string]func(b *verifier.Bundle){
		"creation time":   func(b *verifier.Bundle) { b.CreatedAt = b.CreatedAt.Add(-24 * time.Hour) },
		"registered time": func(b *verifier.Bundle) { b.Request.RequestedAt = b.Request.RequestedAt.Add(-time.Hour) },
		"released time":   func(b *verifier.Bundle) { b.Request.ReleasedAt = b.Request.ReleasedAt.Add(time.Hour) },
		"relation":        func(b *verifier.Bundle) { b.Request.Relation = verifier.RelationGuardian },
		"scope":           func(b *verifier.Bundle) { b.Scope.Parties = b.Scope.Parties[:1] },
		"invented ground": func(b *verifier.Bundle) { b.Withheld[0].Ground = verifier.WithholdUAVG41 },
		"moved into withheld": func(b *verifier.Bundle) {
			e0 := b.Entries[0]
			b.Entries = b.Entries[1:]
			b.Withheld = append([]verifier.WithheldEntry{{Index: e0.Index, LeafRecord: e0.LeafRecord, InclusionProof: e0.InclusionProof, Ground: verifier.WithholdAVG23}}, b.Withheld...)
			if b.Withheld[0].Index > b.Withheld[1].Index {
				b.Withheld[0], b.Withheld[1] = b.Withheld[1], b.Withheld[0]
			}
		},
	} {
		b, err := verifier.ParseBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		change(b)
		if _, err := verifier.VerifyParsedBundle(b, e.Keys, e.Demo.AdminVkey); !errors.Is(err, verifier.ErrAnswer) {
			t.Errorf("v2, %s changed: %v, want ErrAnswer", name, err)
		}
		b.Format, b.Answer = verifier.BundleFormat, nil
		if _, err := verifier.VerifyParsedBundle(b, e.Keys, e.Demo.AdminVkey); err != nil {
			t.Errorf("v1, %s changed: %v (v1 metadata was never proven; only v2 refuses this)", name, err)
		}
	}
	// The answer entry itself cannot be swapped for another body.
	b, _ := verifier.ParseBundle(data)
	b.Answer.Body = append(bytes.Clone(b.Answer.Body[:len(b.Answer.Body)-1]), ' ', '}')
	if _, err := verifier.VerifyParsedBundle(b, e.Keys, e.Demo.AdminVkey); !errors.Is(err, verifier.ErrLeafMismatch) {
		t.Errorf("another answer body: %v, want ErrLeafMismatch", err)
	}
}
