// Package natstest runs a real nats-server with JetStream inside a test, so
// that the publisher, the ingest consumer and the ledger are tested against
// the same server code they meet in production rather than against mocks.
//
// A test calls RunServer, connects to the returned server's ClientURL (or
// uses Connect and JetStream), and the server with its file store in a
// temporary directory is shut down when the test ends.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/internal/natsserver"
)

// RunServer starts the embedded server (internal/natsserver) on a random
// loopback port with JetStream and a file store in t.TempDir(). Each opt
// may change the options first (users, accounts, limits). The server is
// shut down in t.Cleanup.
func RunServer(t testing.TB, opts ...func(*server.Options)) *server.Server {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{
		Name:     "spoor-test",
		StoreDir: t.TempDir(),
		Configure: func(o *server.Options) {
			for _, opt := range opts {
				opt(o)
			}
		},
	})
	if err != nil {
		t.Fatalf("couldn't start nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s.Server
}

// Connect opens a client connection to s and closes it in t.Cleanup.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("couldn't connect to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on nc.
func JetStream(t testing.TB, nc *nats.Conn, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		t.Fatalf("couldn't create JetStream context: %v", err)
	}
	return js
}
