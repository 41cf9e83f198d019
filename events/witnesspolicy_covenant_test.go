package events

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func testVKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// withPolicy returns valid.yaml (90 lines) with a witness_policy block of
// the given lines appended: policy line k is file line 91 + k.
func withPolicy(t *testing.T, lines ...string) []byte {
	t.Helper()
	s := string(readTestdata(t, "valid.yaml"))
	if n := strings.Count(s, "\n"); n != 90 {
		t.Fatalf("valid.yaml has %d lines; the line numbers below assume 90", n)
	}
	s += "witness_policy: |\n"
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return []byte(s)
}

// TestCovenantWitnessPolicy: a covenant carries its witness policy as
// signed text; a valid one parses, and the refusals name the file line of
// the policy line at fault.
func TestCovenantWitnessPolicy(t *testing.T) {
	const origin = "spoor.example/test-regio"
	a, b, c := testVKey(t, "fg-a.example"), testVKey(t, "fg-b.example"), testVKey(t, "fg-c.example")
	logKey, cosKey := testVKey(t, origin), testVKey(t, origin+"/cosigner")

	good := withPolicy(t, "log "+logKey, "witness fg-a "+a+" https://fg-a.example/w", "witness fg-b "+b,
		"witness fg-c "+c, "group fgs 2 fg-a fg-b fg-c", "quorum fgs")
	cov := mustParse(t, good)
	p, err := ParseWitnessPolicy(cov.WitnessPolicy)
	if err != nil || p.Quorum != "fgs" || len(p.Witnesses) != 3 {
		t.Fatalf("the covenant's policy: %+v, %v", p, err)
	}
	// The operator's cosigner as one witness among independent ones is
	// harmless when the quorum needs others too.
	mustParse(t, withPolicy(t, "witness own "+cosKey, "witness fg-a "+a, "group g all own fg-a", "quorum g"))

	for _, tc := range []struct {
		name   string
		lines  []string
		line   int
		reason string
	}{
		{"quorum none", []string{"witness fg-a " + a, "quorum none"}, 93, "policy line 2: the quorum is none"},
		{"cosigner alone", []string{"witness own " + cosKey, "quorum own"}, 93, "policy line 2: the quorum could be met by the log's own keys alone"},
		{"log key as witness", []string{"witness own " + logKey, "witness fg-a " + a, "group g any own fg-a", "quorum g"}, 95, "could be met by the log's own keys"},
		{"log line of another log", []string{"log " + testVKey(t, "other.example/log"), "witness fg-a " + a, "quorum fg-a"}, 92, `policy line 1: the log key is named "other.example/log"`},
		{"parse error", []string{"witness fg-a " + a, "group g 2 fg-a", "quorum g"}, 93, "policy line 2: group g: threshold 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCovenantYAML(withPolicy(t, tc.lines...))
			var es CovenantErrors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("got %v, want one problem", err)
			}
			e := es[0]
			if e.Field != "witness_policy" || e.Line != tc.line || !strings.Contains(e.Reason, tc.reason) {
				t.Fatalf("got %q on %s line %d, want %q on line %d", e.Reason, e.Field, e.Line, tc.reason, tc.line)
			}
		})
	}
}
