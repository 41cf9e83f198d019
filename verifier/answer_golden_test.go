package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goldenAnswer is the answer entry of the golden vectors for non-Go
// readers (docs/wire-format.md): its canonical body and its leaf record.
func goldenAnswer() *AnswerBody {
	at := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	return &AnswerBody{Format: AnswerFormat, Origin: "spoor.example/regio-amersfoort", CreatedAt: at.Add(1500 * time.Millisecond),
		Request: InzageRequest{ID: "01a2522a-0000-7000-8000-000000000001", Relation: RelationParent,
			RequestedAt: at.Add(-2 * time.Hour), ReleasedAt: at},
		RequestedBy: DeskUserID(strings.Repeat("1", 64)), ReleasedBy: DeskUserID(strings.Repeat("2", 64)),
		Scope: BundleScope{Parties: []string{"gemeente-amersfoort", "ggd-regio-utrecht"}, CentralDesk: true},
		Subject: BundleSubject{IDType: "bsn", Pseudonyms: []SubjectPseudonym{{KeyID: "k1",
			Pseudonym: "6f1ed002ab5595859014ebf0951522d9b9e53a3c5a7b7ec8b2e6ee9a3c5f0d11"}}},
		TreeSize: 812, Included: []uint64{17, 455}, Withheld: []AnswerWithheld{{Index: 230, Ground: WithholdAVG23}},
		Erased: []uint64{790}}
}

// goldenYoungPersonAnswer is goldenAnswer released to a parent with the
// young person's consent: the body ends with young_person.
func goldenYoungPersonAnswer() *AnswerBody {
	a := goldenAnswer()
	a.YoungPerson = &AnswerYoungPerson{Decision: YoungPersonConsented, ConsentReference: "dossier JZ-2026/114", Leaves: []uint64{230, 455}}
	return a
}

// TestAnswerYoungPersonRefused: the young_person decision of an answer
// body is refused unless it is well formed and fits the body.
func TestAnswerYoungPersonRefused(t *testing.T) {
	for name, change := range map[string]func(a *AnswerBody){
		"other decision":         func(a *AnswerBody) { a.YoungPerson.Decision = "parent-insisted" },
		"no reference":           func(a *AnswerBody) { a.YoungPerson.ConsentReference = "" },
		"a number in the ref":    func(a *AnswerBody) { a.YoungPerson.ConsentReference = "toestemming 12345678" },
		"control character":      func(a *AnswerBody) { a.YoungPerson.ConsentReference = "dossier\n7" },
		"no leaves":              func(a *AnswerBody) { a.YoungPerson.Leaves = nil },
		"leaf not in the answer": func(a *AnswerBody) { a.YoungPerson.Leaves = []uint64{230, 456} },
		"leaves out of order":    func(a *AnswerBody) { a.YoungPerson.Leaves = []uint64{455, 230} },
		"asked by the young one": func(a *AnswerBody) { a.Request.Relation = RelationYoungPerson },
	} {
		a := goldenYoungPersonAnswer()
		change(a)
		if _, err := MarshalAnswerBody(a); !errors.Is(err, ErrAnswer) {
			t.Errorf("%s: %v, want ErrAnswer", name, err)
		}
	}
	if _, err := MarshalAnswerBody(goldenYoungPersonAnswer()); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenAnswer holds the answer entry's byte forms: the canonical body
// (testdata/answer/body.json) and the leaf record committing to it
// (testdata/answer/leafrecord.hex). -update rewrites them.
func TestGoldenAnswer(t *testing.T) {
	body, err := MarshalAnswerBody(goldenAnswer())
	if err != nil {
		t.Fatal(err)
	}
	rec := LeafRecord{Type: EntryAnswer, BodyHash: sha256.Sum256(body), IntegratedAt: time.Date(2026, 12, 7, 14, 0, 0, 912_000_000, time.UTC), CovenantIndex: 0}
	recBytes, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	young, err := MarshalAnswerBody(goldenYoungPersonAnswer())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "answer")
	files := map[string][]byte{"body.json": body, "leafrecord.hex": []byte(hex.EncodeToString(recBytes) + "\n"),
		"body-young-person.json": young}
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestGoldenAnswer -update ./verifier/ once)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code writes:\n got  %s\n want %s", name, got, want)
		}
	}
	a, err := ParseAnswerBody(body)
	if err != nil || a.TreeSize != 812 || len(a.Withheld) != 1 {
		t.Fatalf("the golden body does not parse back: %+v, %v", a, err)
	}
	r, err := ParseLeafRecord(recBytes)
	if err != nil || r.Type != EntryAnswer || r.Type.String() != "answer" {
		t.Fatalf("the golden record: %+v, %v", r, err)
	}
	// One form only: a reordered or re-spaced body is refused.
	if _, err := ParseAnswerBody(bytes.Replace(body, []byte(`{"format"`), []byte(`{ "format"`), 1)); err == nil {
		t.Error("a body with a space parses")
	}
}

func FuzzParseAnswerBody(f *testing.F) {
	body, _ := MarshalAnswerBody(goldenAnswer())
	f.Add(body)
	young, _ := MarshalAnswerBody(goldenYoungPersonAnswer())
	f.Add(young)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswerBody(b)
		if err != nil {
			return
		}
		again, err := MarshalAnswerBody(a)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a parsed body does not marshal back to itself: %v", err)
		}
	})
}
