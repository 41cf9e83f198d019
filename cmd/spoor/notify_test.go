package main

// Issue 28's "What must show" for notifications, against a real `spoor
// serve` process: a webhook receiver (a TLS server on loopback) answers
// 500 twice, then 200; the ledger redelivers the same CloudEvent id, also
// after it is SIGKILLed between the two failures; every request verifies
// with the key the covenant publishes, and a tampered body does not.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/ledger/notify"
	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// hookDelivery is one request the test's webhook receiver got.
type hookDelivery struct {
	id       string
	status   int
	verified error // webhook.Verify with the covenant's key
	tampered error // webhook.Verify of the same request with one body byte changed
	body     []byte
}

func TestServeNotifyRedeliversAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a child process three times")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	srv := newServeProc(t, bin, dir, "--ops-http", "")
	// The first run makes the log keys and the demo material.
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := demo.Load(filepath.Join(srv.data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	party := m.Signed.Covenant.Parties[0].ID

	// The receiver: 500, 500, then 200; each request checked with the key
	// the covenant lists, as a party's system would.
	var (
		mu       sync.Mutex
		statuses = []int{500, 500}
		pubKeys  map[string]ed25519.PublicKey
	)
	got := make(chan hookDelivery, 16)
	rcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		body := buf.Bytes()
		mu.Lock()
		keys := pubKeys
		d := hookDelivery{status: http.StatusOK, body: body}
		if len(statuses) > 0 {
			d.status, statuses = statuses[0], statuses[1:]
		}
		mu.Unlock()
		_, d.verified = webhook.Verify(r, body, webhook.VerifyOptions{Keys: keys})
		bad := bytes.Clone(body)
		bad[len(bad)/2] ^= 1
		_, d.tampered = webhook.Verify(r, bad, webhook.VerifyOptions{Keys: keys})
		if ev, err := webhook.ParseEvent(body); err == nil {
			d.id = ev.CloudEvent.ID()
		}
		w.WriteHeader(d.status)
		got <- d
	}))
	defer rcv.Close()
	caFile := filepath.Join(dir, "receiver-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rcv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	// The operator's notification key; version 2 of the covenant lists
	// its public half and the party's webhook.
	keyFile := filepath.Join(dir, "notify.key")
	kb, pub, err := notify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	v2 := covenantWithWebhook(t, m, party, rcv.URL+"/spoor", pub)
	listed, err := v2.Covenant.NotificationPublicKey()
	if err != nil || !bytes.Equal(listed, pub) {
		t.Fatalf("the covenant does not list the key: %v", err)
	}
	mu.Lock()
	pubKeys = map[string]ed25519.PublicKey{webhook.KeyID(listed): listed}
	mu.Unlock()
	covFile := filepath.Join(dir, "covenant-v2.signed")
	if err := os.WriteFile(covFile, v2.Envelope.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	srv.extra = append(srv.extra, "--covenant", covFile, "--admin", "@"+filepath.Join(srv.data, "demo-keys", demo.AdminPubFile),
		"--notify-key", keyFile, "--notify-ca", caFile, "--notify-allow-private", "127.0.0.0/8",
		"--notify-min-backoff", "300ms", "--notify-max-backoff", "600ms", "--notify-max-attempts", "20")
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}

	// A message the ledger refuses (not an envelope) on the party's
	// subject: the party is to be told of a malformed refusal.
	nc, err := nats.Connect(srv.natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(natsbus.DisclosureSubject(party))
	msg.Data = []byte("not an envelope")
	msg.Header.Set(jetstream.MsgIDHeader, "notify-test-1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	next := func() hookDelivery {
		t.Helper()
		select {
		case d := <-got:
			if d.verified != nil {
				t.Fatalf("a delivery does not verify with the covenant's key: %v", d.verified)
			}
			if !errors.Is(d.tampered, webhook.ErrSignature) {
				t.Fatalf("a tampered body verified: %v", d.tampered)
			}
			if d.id == "" {
				t.Fatalf("not a Spoor CloudEvent: %s", d.body)
			}
			return d
		case <-time.After(60 * time.Second):
			t.Fatal("no delivery arrived")
			return hookDelivery{}
		}
	}
	first := next()
	if first.status != 500 {
		t.Fatalf("first answer %d", first.status)
	}
	// Mid-retry: the event waits in the outbox for its second attempt.
	if err := srv.kill(); err != nil {
		t.Fatal(err)
	}
	outbox := filepath.Join(srv.data, "notify", "outbox")
	if _, err := os.Stat(filepath.Join(outbox, first.id+".json")); err != nil {
		t.Fatalf("after SIGKILL the event is not in the outbox: %v", err)
	}
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	second, third := next(), next()
	if second.status != 500 || third.status != 200 {
		t.Fatalf("answers %d, %d after the restart", second.status, third.status)
	}
	if second.id != first.id || third.id != first.id {
		t.Fatalf("redelivered with other ids: %s, %s, %s", first.id, second.id, third.id)
	}
	ev, err := webhook.ParseEvent(third.body)
	if err != nil {
		t.Fatal(err)
	}
	rd, ok := ev.Data.(*webhook.RejectedData)
	if !ok || rd.Party != party || rd.Counts[string(events.ReasonMalformed)] != 1 || len(rd.Events) != 1 {
		t.Fatalf("the notice says %+v", ev.Data)
	}
	if regexp.MustCompile(`[0-9a-f]{64}`).Match(third.body) || strings.Contains(string(third.body), "not an envelope") {
		t.Errorf("the payload carries a pseudonym-shaped value or the sender's bytes: %s", third.body)
	}
	// Delivered: gone from the outbox, and nothing more arrives.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, err := os.ReadDir(outbox)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(outbox, e.Name()))
				t.Logf("left in the outbox: %s: %.600s", e.Name(), b)
			}
			t.Fatalf("the outbox still holds %d files", len(ents))
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case d := <-got:
		t.Errorf("a delivery after the 200: %+v", d)
	case <-time.After(time.Second):
	}
	if err := srv.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// covenantWithWebhook signs version 2 of the demo covenant with the
// notification key pub and a webhook for party.
func covenantWithWebhook(t *testing.T, m *demo.Material, party, url string, pub ed25519.PublicKey) *events.SignedCovenant {
	t.Helper()
	y := string(m.Signed.Envelope.Payload)
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+m.Signed.Hash()+"\"\n", 1)
	re := regexp.MustCompile(`(?m)^(\s*)- id: "?` + regexp.QuoteMeta(party) + `"?\n`)
	loc := re.FindStringSubmatchIndex(y)
	if loc == nil {
		t.Fatalf("party %s not found in the demo covenant", party)
	}
	indent := y[loc[2]:loc[3]] + "  "
	y = y[:loc[1]] + fmt.Sprintf("%swebhook: %q\n", indent, url) + y[loc[1]:]
	y = strings.TrimRight(y, "\n") + "\nnotification_key: \"" + base64.StdEncoding.EncodeToString(pub) + "\"\n"
	signed, err := events.SignCovenant([]byte(y), m.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := events.ParseSignedCovenant(signed)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := sc.Covenant.Party(party); p.Webhook != url {
		t.Fatalf("the party's webhook is %q", p.Webhook)
	}
	return sc
}
