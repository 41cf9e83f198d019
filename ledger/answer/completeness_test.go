package answer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
)

// indexedLog is a log with the subject index on, a child with disclosures
// by two parties, another child's disclosure, and a desk.
type indexedLog struct {
	e       *testledger.Env
	l       *ledger.Ledger
	a       *answer.Service
	child   []uint64 // the child's disclosures
	other   uint64   // another child's disclosure
	parties []string // the disclosers of child, in leaf order
	// forgeries counts forged answers, each under its own request id.
	forgeries int
}

func newIndexedLog(t *testing.T) *indexedLog {
	t.Helper()
	e := testledger.New(t)
	vrf, err := subjectindex.OpenVRFKey(datadir.Dir(e.Dir).IndexVRFKey())
	if err != nil {
		t.Fatal(err)
	}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, IndexVRF: vrf})
	t.Cleanup(func() { l.Close(); s.Close() })
	x := &indexedLog{e: e, l: l, a: answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})}
	child, otherChild := e.Gen.Children()[0], e.Gen.Children()[1]
	for range 4 {
		env, d := eventAbout(t, e, child)
		out := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
		x.child = append(x.child, out[0].Index)
		x.parties = append(x.parties, d.Discloser)
	}
	env, _ := eventAbout(t, e, otherChild)
	x.other = submit(t, l, []ledger.Submission{e.Submission(t, l, env)})[0].Index
	if _, err := e.SubmitEvents(t, l, 10); err != nil {
		t.Fatal(err)
	}
	return x
}

// release registers and releases a request about the child (scope: the
// desk of party, or the central desk when party is "") withholding the
// leaves given, and returns the bundle.
func (x *indexedLog) release(t *testing.T, id, party string, withheld ...uint64) []byte {
	t.Helper()
	scope, err := x.a.DeskScope(party)
	if err != nil {
		t.Fatal(err)
	}
	child := x.e.Gen.Children()[0]
	ar := &answer.AccessRequest{ID: id, IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: x.e.Demo.SubjectKey.ID, Pseudonym: child.Pseudonym}},
		RequestedBy: "desk-1", RequestedByCredential: "1"}
	if err := x.a.RegisterAccess(t.Context(), ar); err != nil {
		t.Fatal(err)
	}
	var ws []answer.Withhold
	for _, w := range withheld {
		ws = append(ws, answer.Withhold{Index: w, Ground: verifier.WithholdAVG23})
	}
	r, err := x.a.ReleaseAccess(t.Context(), scope, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, answer.Release{Withheld: ws})
	if err != nil {
		t.Fatal(err)
	}
	data, err := x.a.AccessBundle(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCompleteAnswer: with the subject index on, the released bundle is
// v3, carries one index proof per party of the covenant (a central desk)
// and key version, and verifies as complete; a party's desk gets one
// proof, its own; the FG's audit reads the heads.
func TestCompleteAnswer(t *testing.T) {
	x := newIndexedLog(t)
	data := x.release(t, "req-1", "", x.child[1])
	vb, err := verifier.VerifyBundle(data, x.e.Keys, x.e.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	c := vb.Completeness
	if vb.Bundle.Format != verifier.BundleFormatV3 || c == nil {
		t.Fatalf("format %s, completeness %+v: want a v3 bundle proven complete", vb.Bundle.Format, c)
	}
	sc, _ := x.l.Covenant()
	if len(c.Parties) != len(sc.Covenant.Parties) || len(vb.Bundle.Index.Proofs) != len(sc.Covenant.Parties) || len(c.NotInScope) != 0 {
		t.Fatalf("a central desk's answer proves %d parties with %d proofs (%v not in scope), want all %d",
			len(c.Parties), len(vb.Bundle.Index.Proofs), c.NotInScope, len(sc.Covenant.Parties))
	}
	if c.HeadIndex != vb.Answer.Index+1 || c.TreeSize != vb.Answer.TreeSize {
		t.Fatalf("head %d after answer %d, tree size %d", c.HeadIndex, vb.Answer.Index, c.TreeSize)
	}
	if len(vb.Disclosures) != 3 || len(vb.Withheld) != 1 {
		t.Fatalf("%d shown, %d withheld", len(vb.Disclosures), len(vb.Withheld))
	}

	party := x.parties[0]
	data = x.release(t, "req-2", party)
	vb, err = verifier.VerifyBundle(data, x.e.Keys, x.e.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	if c := vb.Completeness; c == nil || !slices.Equal(c.Parties, []string{party}) || len(c.NotInScope) != len(sc.Covenant.Parties)-1 ||
		len(vb.Bundle.Index.Proofs) != 1 {
		t.Fatalf("a party's desk: %+v", vb.Completeness)
	}
	for _, p := range vb.Bundle.Index.Proofs {
		if p.Party != party {
			t.Fatalf("a party's bundle carries the proof of %s", p.Party)
		}
	}
}

// forged is a bundle made the way a dishonest ledger would make one: an
// answer entry it logged (with the desk's workflow bypassed) and every
// proof recomputed at the current checkpoint, from the public API.
func (x *indexedLog) forged(t *testing.T, honest []byte, change func(b *verifier.Bundle, body *verifier.AnswerBody)) *verifier.Bundle {
	t.Helper()
	ctx := context.Background()
	b, err := verifier.ParseBundle(honest)
	if err != nil {
		t.Fatal(err)
	}
	body, err := verifier.ParseAnswerBody(b.Answer.Body)
	if err != nil {
		t.Fatal(err)
	}
	x.forgeries++
	body.Request.ID += fmt.Sprintf("-forged-%d", x.forgeries)
	b.Request.ID = body.Request.ID
	change(b, body)
	raw, err := verifier.MarshalAnswerBody(body)
	if err != nil {
		t.Fatal(err)
	}
	// The same lists the honest answer proved, at the forged answer's
	// own head.
	var reqs []ledger.IndexProofRequest
	for _, p := range b.Index.Proofs {
		reqs = append(reqs, ledger.IndexProofRequest{IDType: string(b.Subject.IDType), KeyID: p.KeyID,
			Pseudonym: b.Subject.Pseudonyms[0].Pseudonym, Party: p.Party})
	}
	idx, existed, err := x.l.AppendAnswer(ctx, &ledger.AnswerRequest{RequestID: body.Request.ID, Body: raw, IndexProofs: reqs})
	if err != nil || existed {
		t.Fatalf("the forged answer: %v (existed %t)", err, existed)
	}
	head, proofs, err := x.l.AnswerIndexProofs(ctx, body.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := x.l.LeafRecordBytes(ctx, idx)
	b.Answer = &verifier.BundleAnswer{Index: idx, LeafRecord: rec, Body: raw}
	hrec, _ := x.l.LeafRecordBytes(ctx, head)
	hbody, _ := x.l.Entry(ctx, head)
	b.Index = &verifier.BundleIndex{Head: verifier.BundleIndexHead{Index: head, LeafRecord: hrec, Body: hbody}, Proofs: proofs}
	x.reprove(t, b, x.l.Head())
	return b
}

// reprove recomputes every inclusion proof of b at head, and puts head's
// checkpoint in it.
func (x *indexedLog) reprove(t *testing.T, b *verifier.Bundle, head *ledger.Head) {
	t.Helper()
	ctx := context.Background()
	proof := func(idx uint64) []verifier.Base64Bytes {
		p, err := x.l.InclusionProof(ctx, idx, head.Size)
		if err != nil {
			t.Fatalf("inclusion proof of %d at %d: %v", idx, head.Size, err)
		}
		out := make([]verifier.Base64Bytes, len(p))
		for i := range p {
			out[i] = p[i]
		}
		return out
	}
	b.Checkpoint = string(head.Note)
	b.Witnessed = nil
	for i := range b.Covenants {
		b.Covenants[i].InclusionProof = proof(b.Covenants[i].Index)
	}
	for i := range b.Entries {
		b.Entries[i].InclusionProof = proof(b.Entries[i].Index)
	}
	for i := range b.Withheld {
		b.Withheld[i].InclusionProof = proof(b.Withheld[i].Index)
	}
	for i := range b.Erased {
		b.Erased[i].InclusionProof = proof(b.Erased[i].Index)
	}
	if b.Answer != nil && b.Answer.Index < head.Size {
		b.Answer.InclusionProof = proof(b.Answer.Index)
	}
	if b.Index != nil && b.Index.Head.Index < head.Size {
		b.Index.Head.InclusionProof = proof(b.Index.Head.Index)
	}
}

// TestCompletenessTamper: the tampering the issue lists. Each forged
// bundle carries a genuine answer entry that the ledger logged, so the v2
// checks (metadata against the answer entry) pass: with the index proofs
// stripped (a v2 bundle) each verifies, as it would on the code before
// v3; with them, each is refused as incomplete.
func TestCompletenessTamper(t *testing.T) {
	x := newIndexedLog(t)
	honest := x.release(t, "req-1", "", x.child[1])
	if _, err := verifier.VerifyBundle(honest, x.e.Keys, x.e.Demo.AdminVkey); err != nil {
		t.Fatal(err)
	}
	dropEntry := func(b *verifier.Bundle, body *verifier.AnswerBody) {
		gone := b.Entries[0].Index
		b.Entries = b.Entries[1:]
		body.Included = slices.DeleteFunc(body.Included, func(i uint64) bool { return i == gone })
	}
	otherWithheld := func(b *verifier.Bundle, body *verifier.AnswerBody) {
		rec, _ := x.l.LeafRecordBytes(context.Background(), x.other)
		b.Withheld = append(b.Withheld, verifier.WithheldEntry{Index: x.other, LeafRecord: rec, Ground: verifier.WithholdUAVG41})
		slices.SortFunc(b.Withheld, func(a, c verifier.WithheldEntry) int { return int(a.Index) - int(c.Index) })
		body.Withheld = nil
		for _, w := range b.Withheld {
			body.Withheld = append(body.Withheld, verifier.AnswerWithheld{Index: w.Index, Ground: w.Ground})
		}
	}
	for name, c := range map[string]struct {
		change func(b *verifier.Bundle, body *verifier.AnswerBody)
		// after tampers with the forged bundle's index part.
		after func(b *verifier.Bundle)
	}{
		"an entry dropped":                      {change: dropEntry},
		"another child's entry withheld":        {change: otherWithheld},
		"a proof for an in-scope party missing": {change: func(*verifier.Bundle, *verifier.AnswerBody) {}, after: func(b *verifier.Bundle) { b.Index.Proofs = b.Index.Proofs[1:] }},
		"a list of the child shown as absent": {change: func(*verifier.Bundle, *verifier.AnswerBody) {}, after: func(b *verifier.Bundle) {
			for i := range b.Index.Proofs {
				if b.Index.Proofs[i].List != nil {
					b.Index.Proofs[i].List = nil
					return
				}
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			b := x.forged(t, honest, c.change)
			if c.after != nil {
				c.after(b)
			}
			_, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey)
			if !errors.Is(err, verifier.ErrIncomplete) {
				t.Fatalf("v3: %v, want ErrIncomplete", err)
			}
			t.Logf("v3 refused: %v", err)
			b.Format, b.Index = verifier.BundleFormatV2, nil
			vb, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey)
			if c.after == nil && (err != nil || vb.Completeness != nil) {
				t.Fatalf("v2 (the code before): %v; it should verify, proving nothing about completeness", err)
			}
		})
	}

	// An index head older than the answer entry: one of the heads the
	// child's own batches wrote.
	t.Run("a head older than the answer", func(t *testing.T) {
		b, _ := verifier.ParseBundle(honest)
		old := x.child[0] + 1 // the head of the first disclosure's batch
		rec, _ := x.l.LeafRecordBytes(context.Background(), old)
		if r, _ := verifier.ParseLeafRecord(rec); r == nil || r.Type != verifier.EntryIndexHead {
			t.Fatalf("leaf %d is not an index head", old)
		}
		body, _ := x.l.Entry(context.Background(), old)
		b.Index.Head = verifier.BundleIndexHead{Index: old, LeafRecord: rec, Body: body}
		x.reprove(t, b, x.l.Head())
		if _, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey); !errors.Is(err, verifier.ErrIncomplete) {
			t.Fatalf("%v, want ErrIncomplete", err)
		}
	})

	// An older checkpoint, from before the answer, with every proof
	// recomputed from the public API: the answer and its head are not in
	// it.
	t.Run("an older checkpoint", func(t *testing.T) {
		b, _ := verifier.ParseBundle(honest)
		var older *ledger.Head
		if err := x.l.Checkpoints(context.Background(), func(seq uint64, note []byte) error {
			cp, err := verifier.OpenCheckpoint(note, x.e.Keys)
			if err == nil && cp.Size > x.other && cp.Size <= b.Answer.Index && older == nil {
				older = &ledger.Head{Size: cp.Size, Note: note}
			}
			return nil
		}); err != nil || older == nil {
			t.Fatalf("no checkpoint before the answer (%v)", err)
		}
		x.reprove(t, b, older)
		if _, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey); !errors.Is(err, verifier.ErrInclusion) {
			t.Fatalf("%v, want ErrInclusion", err)
		}
	})
}
