package verifier

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// forbiddenDeps are module path fragments that must never be among the
// package's dependencies: auditors import it and must not pull in the
// ledger's storage, bus, metrics or alternative Merkle backend.
var forbiddenDeps = []string{
	"github.com/cockroachdb/pebble",
	"github.com/nats-io/",
	"github.com/prometheus/",
	"github.com/google/trillian",
}

// TestDependencies runs `go list -deps` on the package (tests included) and
// fails if a forbidden module is among them.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-test", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, dep := range deps {
		for _, bad := range forbiddenDeps {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("verifier depends on %s", dep)
			}
		}
	}
}
