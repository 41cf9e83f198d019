package natsserver_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natsserver"
)

// TestStartWithUsers: with users the server refuses a client without
// credentials, admits a party's NKey only to its own subject, and admits
// the ledger in process with every right.
func TestStartWithUsers(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir(), Users: []natsserver.User{{Party: "gemeente-a", NKey: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Errorf("ClientURL %s, want a loopback listener", s.ClientURL())
	}
	if nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	party, err := nats.Connect(s.ClientURL(), nats.Nkey(pub, kp.Sign))
	if err != nil {
		t.Fatalf("the party's NKey: %v", err)
	}
	defer party.Close()
	ledger, err := nats.Connect(s.ClientURL(), s.InProcessOptions()...)
	if err != nil {
		t.Fatalf("the ledger in process: %v", err)
	}
	defer ledger.Close()
	sub, err := ledger.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := party.Publish(natsbus.DisclosureSubject("gemeente-a"), []byte("own")); err != nil {
		t.Fatal(err)
	}
	if err := party.Publish(natsbus.DisclosureSubject("school-b"), []byte("other")); err != nil {
		t.Fatal(err)
	}
	_ = party.Flush()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "own" {
		t.Fatalf("the ledger got %v, %v; want the party's own publish", m, err)
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil && string(m.Data) == "other" {
		t.Error("a party published on another party's subject")
	}
}

// TestStartNotReady: a port in use makes Start fail with ErrNotReady.
func TestStartNotReady(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 15 s for the server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir(), Port: p})
	if err == nil {
		s.Shutdown()
		t.Fatal("started on a port in use")
	}
	if !errors.Is(err, natsserver.ErrNotReady) {
		t.Errorf("err = %v, want ErrNotReady", err)
	}
}

// TestIsLoopback: only loopback addresses go without users.
func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:4222": true, "localhost:4222": true, "[::1]:4222": true,
		"0.0.0.0:4222": false, ":4222": false, "10.0.0.1:4222": false, "nonsense": false,
	} {
		if got := natsserver.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
