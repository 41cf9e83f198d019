package verifier

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are module path fragments that must never be among the
// package's dependencies, its tests' included: auditors, parents' tools and
// browser builds import it and must not pull in the ledger's storage, bus,
// metrics or alternative Merkle backend.
var forbiddenDeps = []string{
	"github.com/cockroachdb/pebble",
	"github.com/nats-io/",
	"github.com/prometheus/",
	"github.com/google/trillian",
}

// forbiddenLibraryDeps are what the package itself (its tests aside: the
// report tests render with verifier/report and serve over httptest) must
// not depend on: the packages built on it, among them the FG's audit engine
// and its HTTP source (verifier/audit) and the tiles client
// (verifier/tlogclient), and any HTTP or TLS client code. A parent's tool or
// a browser build checks a bundle it already holds: it needs none of them.
var forbiddenLibraryDeps = []string{
	"github.com/spoor-ledger/spoor/verifier/",
	"net/http",
	"crypto/tls",
}

// libraryLeaves are the packages under verifier/ that the library may use
// all the same: leaves that import nothing of Spoor (internal/layering holds
// them to it). verifier/aboutchild, the parent's own check (issue 23), comes
// to the verifier through events, which computes VRF outputs with it;
// verifier/subjectindex defines the subject index's formats, whose proofs
// bundles carry (issue 22).
var libraryLeaves = []string{"github.com/spoor-ledger/spoor/verifier/aboutchild", "github.com/spoor-ledger/spoor/verifier/subjectindex"}

// goListDeps runs `go list -deps` on this package, with its tests when
// tests is set, and returns the import paths.
func goListDeps(t *testing.T, tests bool) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"list", "-deps"}
	if tests {
		args = append(args, "-test")
	}
	out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	return deps
}

// forbidden reports every dep that starts with one of bad.
func forbidden(t *testing.T, deps, bad []string) {
	t.Helper()
	for _, dep := range deps {
		if slices.Contains(libraryLeaves, dep) {
			continue
		}
		for _, b := range bad {
			if strings.HasPrefix(dep, b) {
				t.Errorf("verifier depends on %s", dep)
			}
		}
	}
}

// TestDependencies fails if a forbidden module is among the package's
// dependencies, tests included.
func TestDependencies(t *testing.T) {
	forbidden(t, goListDeps(t, true), forbiddenDeps)
}

// TestNoAuditEngineNoHTTP fails if the library a parent's tool imports
// pulls in the audit engine, anything else built on it, or an HTTP client.
func TestNoAuditEngineNoHTTP(t *testing.T) {
	deps := goListDeps(t, false)
	forbidden(t, deps, forbiddenLibraryDeps)
	if !strings.Contains(strings.Join(deps, " "), "github.com/spoor-ledger/spoor/events") {
		t.Fatalf("go list -deps did not list events: %q", deps)
	}
}
