package notify

import (
	"context"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// BenchmarkQueueAndDeliver: b.N notices queued (each fsync'd into the
// outbox) and delivered, signed, to a TLS receiver on loopback that
// verifies each one; the time is until the outbox is empty again.
func BenchmarkQueueAndDeliver(b *testing.B) {
	priv, pub := testKey(b)
	rcv := newReceiver(b, pub)
	go func() {
		for range rcv.received {
		}
	}()
	n, err := New(Config{Dir: b.TempDir(), Key: priv, Origin: "spoor.example/bench",
		PartyWebhook: func(string) string { return rcv.srv.URL }, RootCAs: rcv.pool(), AllowPrivate: loopback})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	rs := []webhook.RejectedEvent{{EventID: eventID, Reason: "bad_signature", StreamSeq: 1}}
	b.ResetTimer()
	for range b.N {
		if err := n.Rejected(ctx, "party-a", time.Now(), rs); err != nil {
			b.Fatal(err)
		}
	}
	for {
		p, err := n.Pending()
		if err != nil {
			b.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, d := range rcv.got {
		if d.err != nil {
			b.Fatalf("a delivery did not verify: %v", d.err)
		}
	}
}
