package replicationtest_test

import (
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger/replicationtest"
)

// TestMemStream runs the suite on the reference stream, over Pebble and
// over the reference store.
func TestMemStream(t *testing.T) {
	t.Run("pebble", func(t *testing.T) {
		replicationtest.Run(t, replicationtest.Harness{Stores: testledger.PebbleStores,
			New: func(*testing.T, string) replicationtest.Stream { return replicationtest.NewMemStream() }})
	})
	t.Run("memstore", func(t *testing.T) {
		replicationtest.Run(t, replicationtest.Harness{Stores: testledger.MemStores,
			New: func(*testing.T, string) replicationtest.Stream { return replicationtest.NewMemStream() }})
	})
}
