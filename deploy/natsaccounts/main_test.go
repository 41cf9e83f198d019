package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedAccountsAreGenerated checks that deploy/nats/accounts.conf is
// exactly what the generator makes for the demo covenant of regio
// Amersfoort, so the shipped file and natsbus.PartyPermissions cannot drift.
// To refresh it: go run ./deploy/natsaccounts --demo amersfoort > deploy/nats/accounts.conf
func TestShippedAccountsAreGenerated(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--demo", "amersfoort"}, &out); err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join("..", "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), shipped) {
		t.Errorf("deploy/nats/accounts.conf differs from the generator's output; rerun:\n  go run ./deploy/natsaccounts --demo amersfoort > deploy/nats/accounts.conf")
	}
}

func TestPasswordVar(t *testing.T) {
	for party, want := range map[string]string{
		"gemeente-amersfoort": "SPOOR_PW_GEMEENTE_AMERSFOORT",
		"bbs":                 "SPOOR_PW_BBS",
		"swv-de-eem":          "SPOOR_PW_SWV_DE_EEM",
	} {
		if got := PasswordVar(party); got != want {
			t.Errorf("PasswordVar(%q) = %q, want %q", party, got, want)
		}
	}
}

func TestRunArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"--demo", "amersfoort", "--covenant", "x"}} {
		if err := run(args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "exactly one") {
			t.Errorf("run(%q) = %v, want an error asking for exactly one source", args, err)
		}
	}
	if err := run([]string{"--covenant", filepath.Join(t.TempDir(), "missing")}, &bytes.Buffer{}); err == nil {
		t.Error("run with a missing covenant file succeeded")
	}
}
