package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// TestWitnessCommand runs `spoor witness` as a newcomer would: a key, a
// configuration naming a log, the server as a process; a checkpoint of the
// log cosigned under the printed verifier key; and after a restart the
// witness still holds the size it cosigned.
func TestWitnessCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor witness as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "witness.key")
	out, errOut, code := runBin(t, bin, "", "witness", "keygen", "--name", "witness.example/fg-test", "-o", keyFile)
	if code != 0 {
		t.Fatalf("witness keygen: %d %s", code, errOut)
	}
	vkey := strings.TrimSpace(out)
	if _, _, code := runBin(t, bin, "", "witness", "keygen", "--name", "witness.example/fg-test", "-o", keyFile); code == 0 {
		t.Error("witness keygen overwrote an existing key file")
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}

	origin := "spoor.example/witness-cli"
	logSkey, logVkey, cosSkey, _, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verifier.NewCheckpointSigner(logSkey, cosSkey)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "witness.yaml")
	cfg := fmt.Sprintf("key_file: %s\nstate_dir: %s\nlisten: %s\nlogs:\n  - origin: %s\n    vkey: %s\n",
		keyFile, filepath.Join(dir, "state"), addr, origin, logVkey)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runBin(t, bin, "", "witness", "serve", "--config", writeTemp(t, dir, cfg+"unknown_key: 1\n")); code == 0 || !strings.Contains(errOut, "unknown_key") {
		t.Errorf("an unknown key in the configuration: exit %d, %q", code, errOut)
	}

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "witness", "serve", "--config", cfgFile)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		for deadline := time.Now().Add(30 * time.Second); ; {
			if resp, err := http.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatalf("spoor witness serve did not answer:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	post := func(req *witness.AddCheckpointRequest) (int, []byte) {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/add-checkpoint", "text/plain", bytes.NewReader(req.Marshal()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	cmd := start()
	tree := memtree.New()
	tree.Grow(t, 3)
	cp, err := signer.Sign(origin, 3, tree.Root(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	code, line := post(&witness.AddCheckpointRequest{Checkpoint: cp})
	if code != http.StatusOK {
		t.Fatalf("add-checkpoint: %d %s", code, line)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatalf("the printed verifier key %q: %v", vkey, err)
	}
	if _, err := note.Open(append(bytes.Clone(cp), line...), note.VerifierList(v)); err != nil {
		t.Fatalf("the cosignature does not verify with the printed key: %v", err)
	}
	// A clean stop, and a start on the same state.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	start()
	if code, b := post(&witness.AddCheckpointRequest{Checkpoint: cp}); code != http.StatusConflict || string(b) != "3\n" {
		t.Fatalf("after a restart: %d %q, want 409 3", code, b)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `spoor_witness_add_checkpoint_total{log="`+origin+`",outcome="conflict"} 1`) {
		t.Errorf("metrics do not count the conflict:\n%s", metrics)
	}
}

func writeTemp(t *testing.T, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "cfg-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
