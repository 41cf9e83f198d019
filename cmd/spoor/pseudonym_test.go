package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/datadir"
)

// runCLI runs the spoor command with stdin and returns its standard output
// and error output.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// TestPseudonym: the BSN comes from standard input, is checked with the
// elfproef and never printed; the answer is one line per key the covenant
// lists, oldest first, each equal to what the events package computes.
func TestPseudonym(t *testing.T) {
	dir := t.TempDir()
	m, err := demo.Ensure(datadir.Dir(dir).DemoKeys(), "waterweg")
	if err != nil {
		t.Fatal(err)
	}
	const bsn = "999953576"
	want, err := events.Pseudonym(m.SubjectKey, events.IDTypeBSN, bsn)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, bsn+"\n", "pseudonym", "--data", dir)
	if err != nil {
		t.Fatalf("pseudonym: %v (%s)", err, errOut)
	}
	if out != "k1 "+want+"\n" {
		t.Errorf("pseudonym printed %q, want %q", out, "k1 "+want+"\n")
	}
	if strings.Contains(out+errOut, bsn) {
		t.Error("the BSN was printed")
	}

	// An onderwijsnummer gives another pseudonym than the same digits as BSN.
	const onr = "100000004"
	wantOnr, err := events.Pseudonym(m.SubjectKey, events.IDTypeOnderwijsnummer, onr)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := runCLI(t, onr+"\n", "pseudonym", "--data", dir, "--id-type", "onderwijsnummer"); err != nil || out != "k1 "+wantOnr+"\n" {
		t.Errorf("onderwijsnummer: %q, %v; want %q", out, err, "k1 "+wantOnr+"\n")
	}

	// A number failing the elfproef, no number, or a number on the command
	// line: refused, nothing printed.
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"999953577\n", nil},
		{"", nil},
		{"", []string{bsn}},
	} {
		out, _, err := runCLI(t, tc.stdin, append([]string{"pseudonym", "--data", dir}, tc.args...)...)
		if err == nil || out != "" {
			t.Errorf("stdin %q args %v: printed %q, err %v; want a refusal", tc.stdin, tc.args, out, err)
		}
	}

	// A covenant with two key versions: one line each, in its order; each
	// listed key is required and an unlisted one refused.
	k2, err := events.GenerateSubjectKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	k2b, _ := json.Marshal(k2)
	k2Path := filepath.Join(dir, "subject-k2.key")
	if err := os.WriteFile(k2Path, k2b, 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(m.Signed.Envelope.Payload), "subject_keys: [k1]", "subject_keys: [k1, k2]", 1)
	signed, err := events.SignCovenant([]byte(yaml), m.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	covPath := filepath.Join(dir, "two-keys.signed")
	if err := os.WriteFile(covPath, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	k1Path := filepath.Join(datadir.Dir(dir).DemoKeys(), demo.SubjectKeyFile)
	want2, _ := events.Pseudonym(k2, events.IDTypeBSN, bsn)
	out, errOut, err = runCLI(t, bsn+"\n", "pseudonym", "--covenant", covPath, "--subject-key", k2Path, "--subject-key", k1Path)
	if err != nil || out != "k1 "+want+"\nk2 "+want2+"\n" {
		t.Errorf("two keys: %q, %v (%s)", out, err, errOut)
	}
	if _, _, err := runCLI(t, bsn+"\n", "pseudonym", "--covenant", covPath, "--subject-key", k1Path); err == nil || !strings.Contains(err.Error(), "k2") {
		t.Errorf("a listed key missing: %v", err)
	}
	if _, _, err := runCLI(t, bsn+"\n", "pseudonym", "--data", dir, "--subject-key", k2Path); err == nil || !strings.Contains(err.Error(), "not one the covenant lists") {
		t.Errorf("an unlisted key: %v", err)
	}
}
