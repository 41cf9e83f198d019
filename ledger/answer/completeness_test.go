package answer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
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

	vrf   *subjectindex.VRFKey
	store interface{ Close() error }
}

// open opens the log (again), on covenant cov when not nil, with clock now
// when not nil.
func (x *indexedLog) open(t testing.TB, cov *events.SignedCovenant, now func() time.Time) {
	t.Helper()
	l, s := x.e.Open(t, ledger.Config{IdleCosign: -1, IndexVRF: x.vrf, Covenant: cov, Now: now})
	x.l, x.store = l, s
	x.a = answer.New(answer.Config{Ledger: l, LogVkey: x.e.LogVkey, CosignerVkey: x.e.CosVkey})
}

func (x *indexedLog) close() {
	if x.l != nil {
		x.l.Close()
		x.store.Close()
		x.l = nil
	}
}

func newIndexedLog(t *testing.T) *indexedLog { return newIndexedLogB(t, true) }

// newIndexedLogB is newIndexedLog for tests and benchmarks, with the index
// on or off.
func newIndexedLogB(t testing.TB, on bool) *indexedLog {
	t.Helper()
	e := testledger.New(t)
	var vrf *subjectindex.VRFKey
	if on {
		var err error
		if vrf, err = subjectindex.OpenVRFKey(datadir.Dir(e.Dir).IndexVRFKey()); err != nil {
			t.Fatal(err)
		}
	}
	x := &indexedLog{e: e, vrf: vrf}
	x.open(t, nil, nil)
	t.Cleanup(func() { x.close() })
	l := x.l
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

	// A party's own desk answers for its leaves only: leaving one of them
	// out as if another party had made it is refused the same way.
	t.Run("a party's desk leaving out one of its leaves", func(t *testing.T) {
		own := x.release(t, "req-own", x.parties[0])
		b := x.forged(t, own, dropEntry)
		if !slices.Equal(b.Scope.Parties, []string{x.parties[0]}) {
			t.Fatalf("scope %v", b.Scope.Parties)
		}
		_, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey)
		if !errors.Is(err, verifier.ErrIncomplete) {
			t.Fatalf("v3: %v, want ErrIncomplete", err)
		}
		b.Format, b.Index = verifier.BundleFormatV2, nil
		if _, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey); err != nil {
			t.Fatalf("v2: %v", err)
		}
	})

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
				older = &ledger.Head{Size: cp.Size, Note: slices.Clone(note)}
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

// TestCompletenessKeyVersions: under a covenant that lists two pseudonym
// key versions, a request made with the child's pseudonym under one of
// them only gets a bundle without a completeness claim (v2); the same
// answer with the one key's proofs made into a v3 bundle is refused.
func TestCompletenessKeyVersions(t *testing.T) {
	x := newIndexedLog(t)
	y := string(x.e.Demo.Signed.Envelope.Payload)
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+x.e.Demo.Signed.Hash()+"\"\n", 1)
	if !strings.Contains(y, "subject_keys: [k1]") {
		t.Fatal("the demo covenant does not list subject_keys: [k1]")
	}
	y = strings.Replace(y, "subject_keys: [k1]", "subject_keys: [k1, k2]", 1)
	signed, err := events.SignCovenant([]byte(y), x.e.Demo.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := events.ParseSignedCovenant(signed)
	if err != nil {
		t.Fatal(err)
	}
	x.close()
	x.open(t, v2, nil)
	data := x.release(t, "req-keys", "")
	vb, err := verifier.VerifyBundle(data, x.e.Keys, x.e.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	if vb.Bundle.Format != verifier.BundleFormatV2 || vb.Completeness != nil {
		t.Fatalf("a request under key k1 only: format %s, completeness %+v; want v2, no claim", vb.Bundle.Format, vb.Completeness)
	}
	b, _ := verifier.ParseBundle(data)
	head, proofs, err := x.l.AnswerIndexProofs(t.Context(), b.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	hrec, _ := x.l.LeafRecordBytes(t.Context(), head)
	hbody, _ := x.l.Entry(t.Context(), head)
	b.Format = verifier.BundleFormatV3
	b.Index = &verifier.BundleIndex{Head: verifier.BundleIndexHead{Index: head, LeafRecord: hrec, Body: hbody}, Proofs: proofs}
	x.reprove(t, b, x.l.Head())
	_, err = verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey)
	if !errors.Is(err, verifier.ErrIncomplete) || !strings.Contains(err.Error(), "key k2") {
		t.Fatalf("a v3 bundle without key k2: %v, want ErrIncomplete naming k2", err)
	}
}

// TestCompletenessEarlyRemoval: an operator who edits the store so that
// the index drops an erased entry before the covenant's notice period
// ended gets a log whose stored index checks out (it is a valid map), but
// no bundle: the verifier, which the ledger runs on every bundle it
// builds, refuses a removal without a tombstone that old. Removed after
// the period, the same entry is accepted.
func TestCompletenessEarlyRemoval(t *testing.T) {
	x := newIndexedLog(t)
	clock := struct{ at time.Time }{time.Now().UTC()}
	now := func() time.Time { return clock.at }
	x.close()
	x.open(t, nil, now)
	gone := x.child[2]
	if _, err := x.l.Erase(t.Context(), gone, "request"); err != nil {
		t.Fatal(err)
	}
	x.close()

	// Move the drop record to now.
	raw, err := pebblestore.Open(datadir.Dir(x.e.Dir).Ledger(), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var key, mk []byte
	if err := raw.Scan(t.Context(), []byte{'h'}, []byte{'i'}, func(k, v []byte) error {
		key, mk = slices.Clone(k), slices.Clone(v)
		return nil
	}); err != nil || key == nil {
		t.Fatalf("no drop record (%v)", err)
	}
	early := binary.BigEndian.AppendUint64([]byte{'h'}, uint64(now().Add(-time.Hour).UnixMilli()))
	early = binary.BigEndian.AppendUint64(early, gone)
	if err := raw.Commit(t.Context(), &ledger.Batch{Ops: []ledger.Op{{Key: key, Delete: true}, {Key: early, Value: mk}}}); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	x.open(t, nil, now)
	if _, err := x.e.SubmitEvents(t, x.l, 1); err != nil {
		t.Fatal(err)
	}
	if r, err := x.l.RecomputeIndex(t.Context()); err != nil || r.Erased != 0 {
		t.Fatalf("the index after the edited drop: %+v, %v; want the erased entry dropped, the map valid", r, err)
	}
	scope, _ := x.a.DeskScope("")
	child := x.e.Gen.Children()[0]
	ar := &answer.AccessRequest{ID: "req-early", IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: x.e.Demo.SubjectKey.ID, Pseudonym: child.Pseudonym}},
		RequestedBy: "desk-1", RequestedByCredential: "1"}
	if err := x.a.RegisterAccess(t.Context(), ar); err != nil {
		t.Fatal(err)
	}
	r, err := x.a.ReleaseAccess(t.Context(), scope, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, answer.Release{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.a.AccessBundle(t.Context(), r)
	if !errors.Is(err, verifier.ErrIncomplete) || !strings.Contains(err.Error(), "younger than the notice period") {
		t.Fatalf("the bundle over an early removal: %v, want ErrIncomplete (a removal without an old enough tombstone)", err)
	}

	// The same removal after the notice period is accepted.
	y := newIndexedLog(t)
	yclock := time.Now().UTC()
	y.close()
	y.open(t, nil, func() time.Time { return yclock })
	if _, err := y.l.Erase(t.Context(), y.child[2], "request"); err != nil {
		t.Fatal(err)
	}
	sc, _ := y.l.Covenant()
	yclock = yclock.Add(time.Duration(sc.Covenant.Retention.ErasureNoticeDays+1) * 24 * time.Hour)
	if _, err := y.e.SubmitEvents(t, y.l, 1); err != nil {
		t.Fatal(err)
	}
	data := y.release(t, "req-late", "")
	vb, err := verifier.VerifyBundle(data, y.e.Keys, y.e.Demo.AdminVkey)
	if err != nil || vb.Completeness == nil {
		t.Fatalf("a removal after the notice period: %v", err)
	}
}

var updateV3 = flag.Bool("update-bundle-v3", false, "rewrite verifier/testdata/bundle-v3 from a real ledger")

// TestUpdateBundleV3Golden writes, with -update-bundle-v3, a v3 bundle
// made by a real ledger with the subject index (a central desk's answer
// with a withheld entry), with the keys to pin, as the verifier's golden
// vector of the format (verifier's TestGoldenBundleV3, FuzzVerifyBundleV3).
func TestUpdateBundleV3Golden(t *testing.T) {
	if !*updateV3 {
		return
	}
	x := newIndexedLog(t)
	data := x.release(t, "golden-v3", "", x.child[1])
	dir := filepath.Join("..", "..", "verifier", "testdata", "bundle-v3")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"bundle.json":   data,
		"log.vkey":      []byte(x.e.LogVkey + "\n"),
		"cosigner.vkey": []byte(x.e.CosVkey + "\n"),
		"admin.pub":     []byte(x.e.Demo.AdminVkey + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFollowUp: a follow-up answer, compared with the earlier one
// (verifier.CompareFollowUp, with the consistency proof between their
// checkpoints), shows nothing changed when nothing did, and exactly the
// leaves added and erased since when they were; a follow-up that shows an
// earlier list for a party that has a new entry is refused (its proof no
// longer verifies at the new head), as is a wrong consistency proof or
// the two answers taken in the wrong order.
func TestFollowUp(t *testing.T) {
	x := newIndexedLog(t)
	ctx := t.Context()
	verify := func(data []byte) *verifier.VerifiedBundle {
		t.Helper()
		vb, err := verifier.VerifyBundle(data, x.e.Keys, x.e.Demo.AdminVkey)
		if err != nil {
			t.Fatal(err)
		}
		return vb
	}
	proof := func(a, b *verifier.VerifiedBundle) [][]byte {
		t.Helper()
		p, err := x.l.ConsistencyProof(ctx, a.Checkpoint.Size, b.Checkpoint.Size)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := verify(x.release(t, "req-a", ""))
	same := verify(x.release(t, "req-b", ""))
	f, err := verifier.CompareFollowUp(first, same, proof(first, same))
	if err != nil || !f.Unchanged {
		t.Fatalf("a follow-up with nothing new: %+v, %v", f, err)
	}

	child := x.e.Gen.Children()[0]
	var added []uint64
	addedBy := map[string][]uint64{}
	for range 2 {
		env, d := eventAbout(t, x.e, child)
		idx := submit(t, x.l, []ledger.Submission{x.e.Submission(t, x.l, env)})[0].Index
		added = append(added, idx)
		addedBy[d.Discloser] = append(addedBy[d.Discloser], idx)
	}
	if _, err := x.l.Erase(ctx, x.child[0], "request"); err != nil {
		t.Fatal(err)
	}
	laterData := x.release(t, "req-c", "")
	later := verify(laterData)
	f, err = verifier.CompareFollowUp(first, later, proof(first, later))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for p, ls := range f.Added {
		if !slices.Equal(ls, addedBy[p]) {
			t.Errorf("added by %s: %v, want %v", p, ls, addedBy[p])
		}
		got = append(got, ls...)
	}
	slices.Sort(got)
	if f.Unchanged || !slices.Equal(got, added) || !slices.Equal(f.Erased, []uint64{x.child[0]}) || len(f.Removed) != 0 {
		t.Fatalf("the follow-up: %+v; want added %v, erased [%d]", f, added, x.child[0])
	}

	// Hiding an addition: the later bundle with the earlier list of a
	// party that has a new entry.
	b, _ := verifier.ParseBundle(laterData)
	for i, p := range b.Index.Proofs {
		if len(addedBy[p.Party]) == 0 {
			continue
		}
		for _, op := range first.Bundle.Index.Proofs {
			if op.Party == p.Party && op.KeyID == p.KeyID {
				b.Index.Proofs[i] = op
			}
		}
		break
	}
	if _, err := verifier.VerifyParsedBundle(b, x.e.Keys, x.e.Demo.AdminVkey); !errors.Is(err, verifier.ErrIncomplete) {
		t.Fatalf("a follow-up showing an earlier list: %v, want ErrIncomplete", err)
	}
	if _, err := verifier.CompareFollowUp(first, later, proof(first, same)); !errors.Is(err, verifier.ErrFollowUp) {
		t.Fatalf("a consistency proof for other sizes: %v, want ErrFollowUp", err)
	}
	if _, err := verifier.CompareFollowUp(later, first, proof(first, later)); !errors.Is(err, verifier.ErrFollowUp) {
		t.Fatalf("the answers in the wrong order: %v, want ErrFollowUp", err)
	}
}
