package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
)

// TestTokens: add prints a token once and stores only its hash in a 0600
// file that serve then accepts; list shows names, roles and parties;
// revoke removes by name; duplicates, unknown roles and parties outside the
// covenant are refused.
func TestTokens(t *testing.T) {
	dir := t.TempDir()
	if _, err := demo.Ensure(datadir.Dir(dir).DemoKeys(), "waterweg"); err != nil {
		t.Fatal(err)
	}
	cov := filepath.Join(datadir.Dir(dir).DemoKeys(), demo.SignedFile)
	file := filepath.Join(dir, "tokens.json")
	add := func(args ...string) (string, error) {
		out, _, err := runCLI(t, "", append([]string{"tokens", "add", "--tokens", file, "--covenant", cov}, args...)...)
		return strings.TrimSpace(out), err
	}
	deskTok, err := add("--name", "desk-vlaardingen", "--role", "desk", "--party", "gemeente-vlaardingen")
	if err != nil || len(deskTok) != 64 {
		t.Fatalf("add desk: %q, %v", deskTok, err)
	}
	partyTok, err := add("--name", "vlaardingen-suite", "--role", "party", "--party", "gemeente-vlaardingen")
	if err != nil {
		t.Fatalf("add party: %v", err)
	}
	if _, err := add("--name", "fg-waterweg", "--role", "fg"); err != nil {
		t.Fatalf("add fg: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "desk-vlaardingen", "--role", "desk", "--party", "gemeente-schiedam"}, "already"},
		{[]string{"--name", "x", "--role", "admin"}, "must be desk, fg or party"},
		{[]string{"--name", "x", "--role", "party", "--party", "gemeente-amersfoort"}, "not a party of the covenant"},
		{[]string{"--name", "x", "--role", "party"}, "names its party"},
		{[]string{"--name", "x", "--role", "desk"}, "no central desk"},
		{[]string{"--name", "x", "--role", "fg", "--party", "gemeente-vlaardingen"}, "leave out --party"},
	} {
		if out, err := add(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
			t.Errorf("add %v: printed %q, err %v; want a refusal with %q", tc.args, out, err, tc.want)
		}
	}

	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(file)
	if strings.Contains(string(raw), deskTok) || strings.Contains(string(raw), partyTok) {
		t.Error("the tokens file holds a token, not only its hash")
	}

	// serve accepts the file and knows each user by its token's hash.
	users, err := loadTokens(&serveFlags{data: dir, tokens: file}, nil)
	if err != nil {
		t.Fatalf("serve refuses the file: %v", err)
	}
	if p := users[httpapi.TokenHash(deskTok)]; p.Role != httpapi.RoleDesk || p.Name != "desk-vlaardingen" || p.Party != "gemeente-vlaardingen" {
		t.Errorf("desk token: %+v", p)
	}
	if p := users[httpapi.TokenHash(partyTok)]; p.Role != httpapi.RoleParty || p.Party != "gemeente-vlaardingen" {
		t.Errorf("party token: %+v", p)
	}

	out, _, err := runCLI(t, "", "tokens", "list", "--tokens", file)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{"NAME ROLE PARTY", "desk-vlaardingen desk gemeente-vlaardingen", "vlaardingen-suite party gemeente-vlaardingen", "fg-waterweg fg -"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("list:\n%s\nwant rows %q", out, want)
	}
	entries, err := readTokensFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.TokenSHA256) != 64 || strings.Contains(out, e.TokenSHA256) {
			t.Errorf("%s: hash %q stored, or shown by list", e.Name, e.TokenSHA256)
		}
	}

	if _, _, err := runCLI(t, "", "tokens", "revoke", "--tokens", file, "--name", "vlaardingen-suite"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "tokens", "revoke", "--tokens", file, "--name", "vlaardingen-suite"); err == nil {
		t.Error("revoking an unknown name succeeded")
	}
	users, err = loadTokens(&serveFlags{data: dir, tokens: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := users[httpapi.TokenHash(partyTok)]; ok {
		t.Error("a revoked token is still accepted")
	}
	if _, ok := users[httpapi.TokenHash(deskTok)]; !ok {
		t.Error("revoke removed another user")
	}
}
