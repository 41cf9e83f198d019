package replication

import (
	"context"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/replicationtest"
)

// natsStream is SPOOR_LOG on a real nats-server, as the suite drives it.
type natsStream struct{ setup *Setup }

func (s natsStream) Publisher() ledger.Replicator { return NewPublisher(s.setup, nil, nil) }

func (s natsStream) CatchUp(ctx context.Context, l *ledger.Ledger, keys *ledger.DataKeys) error {
	return NewFollower(s.setup, l, keys, nil).CatchUp(ctx, NewPublisher(s.setup, nil, nil))
}

// TestConformance runs the replication suite on JetStream (an embedded
// nats-server per test), with the ledgers on Pebble.
func TestConformance(t *testing.T) {
	replicationtest.Run(t, replicationtest.Harness{
		Stores: testledger.PebbleStores,
		New: func(t *testing.T, origin string) replicationtest.Stream {
			return natsStream{setupNATS(t, origin)}
		},
	})
}
