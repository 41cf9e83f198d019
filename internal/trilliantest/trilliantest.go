// Package trilliantest finds the real Trillian log server that
// .ci/trillian.sh starts for the tests, and makes trees on it.
//
// The harness exports TRILLIAN_ADDR (the log server's gRPC address) and,
// for tests that run a server of their own, TRILLIAN_BIN_DIR and
// TRILLIAN_PG_URI. A test that needs them and does not find them is
// skipped, except under CI=true, where a missing Trillian is a failure:
// CI must never report a Trillian test as passed that did not run.
package trilliantest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/ledger/trillianlog"
)

// Env returns the values of the named variables, or skips tb (fails it
// under CI=true) when any of them is unset. run is the command that runs
// the test with the harness, for the skip message.
func Env(tb testing.TB, run string, names ...string) []string {
	tb.Helper()
	vals := make([]string, len(names))
	for i, n := range names {
		if vals[i] = os.Getenv(n); vals[i] == "" {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("%s is not set, and CI=true: a missing Trillian is a failure (source .ci/trillian.sh && trillian_start)", n)
			}
			tb.Skipf("%s is not set: run `bash .ci/trillian.sh run %s` to test against a real Trillian", n, run)
		}
	}
	return vals
}

// Addr returns the harness's log server address (see Env).
func Addr(tb testing.TB, run string) string {
	tb.Helper()
	return Env(tb, run, "TRILLIAN_ADDR")[0]
}

// Tree makes a PREORDERED_LOG tree named name on the log server at addr
// and deletes it when the test ends.
func Tree(tb testing.TB, addr, name string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := trillianlog.CreateTree(ctx, addr, name)
	if err != nil {
		tb.Fatalf("creating a Trillian tree on %s: %v", addr, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := trillianlog.DeleteTree(ctx, addr, id); err != nil {
			tb.Logf("deleting Trillian tree %d: %v", id, err)
		}
	})
	return id
}
