package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// crashpointVar is the environment variable that arms a crash point in a
// binary built with the crashpoints tag (internal/crashpoint).
const crashpointVar = "SPOOR_CRASHPOINT"

// TestReleaseBuildHasNoCrashSwitch builds ./cmd/spoor as a user would,
// without build tags, and checks that the SIGKILL switch of the crash tests
// is not in it: no variable read from the environment can make a
// production ledger kill itself. The binary the crash tests build (with the
// tag) is the positive control: the search finds the name there.
func TestReleaseBuildHasNoCrashSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/spoor")
	}
	goCmd, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(t.TempDir(), "spoor")
	if out, err := exec.Command(goCmd, "build", "-o", release, "github.com/spoor-ledger/spoor/cmd/spoor").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		bin  string
		want bool
	}{{release, false}, {buildSpoor(t), true}} {
		b, err := os.ReadFile(c.bin)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(b, []byte(crashpointVar)); got != c.want {
			t.Errorf("%s holds %q: %v, want %v", c.bin, crashpointVar, got, c.want)
		}
	}
}
