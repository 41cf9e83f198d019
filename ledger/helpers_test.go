package ledger_test

import (
	"path/filepath"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

func openStore(e *testledger.Env) (*pebblestore.Store, error) {
	return pebblestore.Open(filepath.Join(e.Dir, "ledger"), pebblestore.Config{})
}
