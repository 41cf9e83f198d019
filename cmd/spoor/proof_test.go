package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/witnesstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/witness"
)

// TestProofCommand: spoor proof writes a tlog-proof@v1 file for an event of
// a witnessed ledger that verifies under the covenant's policy, refuses a
// proof about other bytes, and --check refuses a file whose proof, leaf or
// witness lines were changed.
func TestProofCommand(t *testing.T) {
	env := testledger.New(t)
	logCfg := witness.LogConfig{Origin: env.Keys.Log.Name(), VKey: env.LogVkey}
	ws := []*witnesstest.Witness{witnesstest.Start(t, "fg-a", logCfg), witnesstest.Start(t, "fg-b", logCfg), witnesstest.Start(t, "fg-c", logCfg)}
	policyText := witnesstest.Policy(env.LogVkey, 2, ws...)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	vkeyFile := filepath.Join(dir, "log.vkey")
	for path, text := range map[string]string{policyFile: policyText, vkeyFile: env.LogVkey + "\n",
		filepath.Join(dir, "cosigner.vkey"): env.CosVkey + "\n"} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l1, s1 := env.Open(t, ledger.Config{IdleCosign: -1})
	l1.Close()
	s1.Close()
	l, s := env.Open(t, ledger.Config{IdleCosign: -1, Covenant: env.CovenantWithPolicy(t, policyText)})
	defer s.Close()
	defer l.Close()
	wit, err := witnessing.New(witnessing.Config{Ledger: l, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = wit.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l}))
	defer srv.Close()

	envelope, d := env.Event(t)
	if _, err := env.SubmitEnvelopes(t, l, [][]byte{envelope}); err != nil {
		t.Fatal(err)
	}
	for w := l.WitnessedHead(); w == nil || w.Size < l.Head().Size; w = l.WitnessedHead() {
		select {
		case <-t.Context().Done():
			t.Fatal("never witnessed")
		case <-time.After(5 * time.Millisecond):
		}
	}
	envFile := filepath.Join(dir, "event.dsse")
	if err := os.WriteFile(envFile, envelope, 0o644); err != nil {
		t.Fatal(err)
	}
	proofFile := filepath.Join(dir, "event.tlog-proof")
	out, errOut, code := runSpoor(t, "proof", d.ID, "--url", srv.URL, "--envelope", envFile, "--vkey", "@"+vkeyFile, "--policy", policyFile, "-o", proofFile)
	if code != 0 {
		t.Fatalf("spoor proof: exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(proofFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "c2sp.org/tlog-proof@v1\nextra ") || !strings.Contains(string(data), "— witness.example/fg-") {
		t.Fatalf("not a witnessed tlog-proof:\n%s", data)
	}
	out, errOut, code = runSpoor(t, "proof", "--check", proofFile, "--envelope", envFile, "--vkey", "@"+vkeyFile, "--policy", policyFile)
	if code != 0 || !strings.Contains(out, "OK:") || !strings.Contains(out, "quorum cosigned") {
		t.Fatalf("spoor proof --check: exit %d\n%s%s", code, out, errOut)
	}

	// Another envelope's hash: the ledger has no such bytes under the id.
	other := sha256.Sum256([]byte("other bytes"))
	if out, _, code := runSpoor(t, "proof", d.ID, "--url", srv.URL, "--sha256", hex.EncodeToString(other[:]), "--vkey", "@"+vkeyFile, "-o", filepath.Join(dir, "x")); code == 0 {
		t.Fatalf("a proof for other bytes was written:\n%s", out)
	}
	// Tampered files fail --check.
	lines := strings.Split(string(data), "\n")
	tamper := map[string]string{
		"index":    strings.Replace(string(data), lines[2], "index 0", 1),
		"witness":  strings.Join(dropWitnessLines(lines), "\n"),
		"envelope": string(data),
	}
	for name, text := range tamper {
		f := filepath.Join(dir, name+".tlog-proof")
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"proof", "--check", f, "--vkey", "@" + vkeyFile, "--policy", policyFile}
		if name == "envelope" {
			args = append(args, "--sha256", hex.EncodeToString(other[:]))
		}
		if out, _, code := runSpoor(t, args...); code == 0 {
			t.Errorf("--check of a proof with its %s changed passed:\n%s", name, out)
		}
	}
}

func dropWitnessLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "— witness.example/") {
			out = append(out, l)
		}
	}
	return out
}
