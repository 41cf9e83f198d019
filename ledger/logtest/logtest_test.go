package logtest_test

// The conformance suite on every implementation of the Merkle-log seam.
// The Trillian run needs a real Trillian, which .ci/trillian.sh starts:
//
//	bash .ci/trillian.sh run go test -race -count=1 ./ledger/logtest/
//
// Without TRILLIAN_ADDR that run skips, except under CI=true, where a
// missing Trillian is a failure (.ci/run starts one for `go test ./...`).
// Each run makes its own PREORDERED_LOG trees with the admin API, as
// createtree does (trillianlog.CreateTree).

import (
	"context"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/trilliantest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/logtest"
	"github.com/spoor-ledger/spoor/ledger/storetest"
	"github.com/spoor-ledger/spoor/ledger/trillianlog"
)

// TestConformance runs the scenario on every backend over Pebble, and the
// default and in-memory backends over the reference store too, which shows
// the suite does not depend on the store it is given: every result must
// equal the default's on Pebble.
func TestConformance(t *testing.T) {
	w := logtest.NewWorkload(t)
	backends := []logtest.Backend{
		{Name: "tiles", New: func(testing.TB) ledger.MerkleBackend { return nil }},
		{Name: "memory", New: func(testing.TB) ledger.MerkleBackend { return logtest.NewMemoryBackend() }},
		{Name: "trillian", New: newTrillian},
	}
	type storeKind struct {
		name   string
		stores storetest.Stores
	}
	kinds := []storeKind{{"pebble", testledger.PebbleStores}, {"memstore", testledger.MemStores}}
	results := map[string]*logtest.Result{}
	var names []string
	for _, b := range backends {
		for _, k := range kinds {
			if b.Name == "trillian" && k.name != "pebble" {
				continue // one Trillian run is enough: the store is not what it tests
			}
			name := b.Name + "/" + k.name
			names = append(names, name)
			t.Run(name, func(t *testing.T) {
				results[name] = logtest.Run(t, w, b, k.stores)
			})
		}
	}
	base := results["tiles/pebble"]
	if base == nil {
		t.Fatal("the default (tiles on Pebble) run gave no result")
	}
	for _, name := range names[1:] {
		r := results[name]
		if r == nil {
			continue // failed or skipped above, which the subtest reports
		}
		if err := base.Diff(r); err != nil {
			t.Errorf("%s differs from tiles/pebble: %v", name, err)
		}
	}
}

// newTrillian makes a fresh PREORDERED_LOG tree on the harness's Trillian
// and dials it; it skips without a Trillian (fails under CI=true).
func newTrillian(tb testing.TB) ledger.MerkleBackend {
	tb.Helper()
	addr := trilliantest.Addr(tb, "go test ./ledger/logtest/")
	id := trilliantest.Tree(tb, addr, "spoor-logtest")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := trillianlog.Dial(ctx, addr, id, trillianlog.Options{})
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}
