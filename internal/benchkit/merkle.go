package benchkit

import (
	"context"
	"fmt"

	"github.com/spoor-ledger/spoor/ledger"
)

// merkle returns a fresh Merkle backend for one of the ledgers of (b) and
// (c), from Config.Merkle, or nil (the tiles in Pebble only) and a no-op.
func (r *rig) merkle(ctx context.Context) (ledger.MerkleBackend, func(), error) {
	if r.cfg.Merkle == nil {
		return nil, func() {}, nil
	}
	m, release, err := r.cfg.Merkle(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't set up the Merkle backend (%s): %w", r.cfg.MerkleName, err)
	}
	if release == nil {
		release = func() {}
	}
	return m, release, nil
}
