package gateway_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/gateway"
)

// numberRE finds runs of nine or more digits: what a BSN or
// onderwijsnummer in the input would look like.
var numberRE = regexp.MustCompile(`[0-9]{9,}`)

// FuzzParseInput feeds the gateway's JSON parsing anything: it must not
// panic, every error must be a *FieldError of the line it was given, and
// no error (of parsing or of building the disclosure) may repeat a run of
// nine digits from the input.
func FuzzParseInput(f *testing.F) {
	f.Add(input(nil))
	f.Add(input(func(m map[string]any) { m["subject"] = map[string]any{"id_type": "bsn", "number": badBSN} }))
	f.Add(input(func(m map[string]any) {
		m["subject"] = map[string]any{"id_type": "onderwijsnummer", "number": "1012345678"}
	}))
	f.Add(input(func(m map[string]any) { m[bsn] = bsn }))
	f.Add(input(func(m map[string]any) { m["occurred_at"] = "999990019" }))
	f.Add(input(func(m map[string]any) { m["recipients"] = 999990019 }))
	f.Add([]byte(`{"subject":{"number":999990019}}`))
	f.Add([]byte(`{"trace_id": "4bf9`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[999990019]`))
	f.Add([]byte(``))
	key := events.SubjectKey{ID: "k1", Secret: make([]byte, events.SubjectKeySize)}
	f.Fuzz(func(t *testing.T, b []byte) {
		numbers := numberRE.FindAllString(string(b), -1)
		leaks := func(s string) bool {
			for _, n := range numbers {
				if strings.Contains(s, n) {
					return true
				}
			}
			return false
		}
		in, err := gateway.ParseInput(7, b)
		if err != nil {
			var fe *gateway.FieldError
			if !errors.As(err, &fe) || fe.Line != 7 || fe.Code != gateway.CodeMalformedJSON || fe.Detail == "" {
				t.Fatalf("error %#v is not a malformed_json FieldError of line 7", err)
			}
			if out, _ := json.Marshal(fe); leaks(string(out)) {
				t.Fatalf("the error repeats a number from the input: %s", out)
			}
			return
		}
		id := events.KeyedEventID([]byte("secret"), partyA, "k")
		d, errs := in.Disclosure(7, partyA, "spoor.example/regio-amersfoort", id, key)
		for _, fe := range errs {
			if fe.Line != 7 {
				t.Fatalf("error of line %d, want 7", fe.Line)
			}
			if out, _ := json.Marshal(fe); leaks(string(out)) {
				t.Fatalf("the error repeats a number from the input: %s", out)
			}
		}
		if d.Discloser != partyA || d.ID != id || d.Salt != "" {
			t.Fatalf("the gateway's fields are not its own: discloser %q id %q", d.Discloser, d.ID)
		}
		if len(errs) == 0 && d.Subject.Pseudonym == "" {
			t.Fatal("no error, yet no pseudonym")
		}
		if d.Subject.Pseudonym != "" && strings.Contains(d.Subject.Pseudonym, in.Subject.Number) && in.Subject.Number != "" {
			t.Fatal("the pseudonym holds the number")
		}
		if s := in.Subject.String() + in.Subject.GoString() + in.Subject.LogValue().String(); in.Subject.Number != "" && strings.Contains(s, in.Subject.Number) {
			t.Fatal("InputSubject prints its number")
		}
	})
}

// FuzzSplitLines checks that splitting a JSON Lines body keeps every
// non-blank line, numbered by its place.
func FuzzSplitLines(f *testing.F) {
	f.Add([]byte("a\n\nb\r\nc"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		physical := strings.Split(string(b), "\n")
		for _, l := range gateway.SplitLines(b) {
			if l.N < 1 || l.N > len(physical) {
				t.Fatalf("line number %d of %d lines", l.N, len(physical))
			}
			if want := strings.TrimSuffix(physical[l.N-1], "\r"); string(l.Bytes) != want {
				t.Fatalf("line %d is %q, want %q", l.N, l.Bytes, want)
			}
		}
	})
}
