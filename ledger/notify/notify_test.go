package notify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// receiver is a real webhook receiver on a TLS server: it verifies every
// request with the published key and answers from a script of statuses
// (200 once the script runs out).
type receiver struct {
	t    testing.TB
	srv  *httptest.Server
	keys map[string]ed25519.PublicKey

	mu       sync.Mutex
	script   []int
	got      []delivery
	received chan delivery
}

type delivery struct {
	status int
	id     string
	body   []byte
	err    error // from webhook.Verify
}

func newReceiver(t testing.TB, pub ed25519.PublicKey, script ...int) *receiver {
	r := &receiver{t: t, keys: map[string]ed25519.PublicKey{webhook.KeyID(pub): pub}, script: script, received: make(chan delivery, 64)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(req.Body)
	d := delivery{body: buf.Bytes()}
	if _, d.err = webhook.Verify(req, d.body, webhook.VerifyOptions{Keys: r.keys}); d.err == nil {
		if ev, err := webhook.ParseEvent(d.body); err == nil {
			d.id = ev.CloudEvent.ID()
		} else {
			d.err = err
		}
	}
	r.mu.Lock()
	d.status = http.StatusOK
	if d.err != nil {
		d.status = http.StatusUnauthorized
	} else if len(r.script) > 0 {
		d.status, r.script = r.script[0], r.script[1:]
	}
	r.got = append(r.got, d)
	r.mu.Unlock()
	w.WriteHeader(d.status)
	r.received <- d
}

func (r *receiver) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.srv.Certificate())
	return p
}

func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.received:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery arrived")
		return delivery{}
	}
}

func testKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func newNotifier(t *testing.T, dir string, priv ed25519.PrivateKey, hooks map[string]string, fg string, pool *x509.CertPool, allow []netip.Prefix) *Notifier {
	t.Helper()
	n, err := New(Config{Dir: dir, Key: priv, Origin: "spoor.example/test",
		PartyWebhook: func(p string) string { return hooks[p] }, FGWebhook: fg,
		RootCAs: pool, AllowPrivate: allow, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func run(t *testing.T, n *Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

const eventID = "01936b2e-7c4d-7abc-8def-0123456789ab"

// TestRedeliverSameID: the receiver answers 500 twice, then 200; the
// notifier redelivers with the same CloudEvent id, every request verifies
// with the published key, and the outbox is empty afterwards.
func TestRedeliverSameID(t *testing.T) {
	priv, pub := testKey(t)
	rcv := newReceiver(t, pub, 500, 500)
	n := newNotifier(t, t.TempDir(), priv, map[string]string{"party-a": rcv.srv.URL + "/hook"}, "", rcv.pool(), loopback)
	stop := run(t, n)
	defer stop()
	if err := n.Rejected(context.Background(), "party-a", time.Now(), []webhook.RejectedEvent{{EventID: eventID, Reason: "bad_signature", StreamSeq: 3}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		d := rcv.next(t)
		if d.err != nil {
			t.Fatalf("the receiver could not verify a delivery: %v", d.err)
		}
		ids = append(ids, d.id)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("redeliveries carry other ids: %v", ids)
	}
	waitFor(t, func() bool { p, _ := n.Pending(); return len(p) == 0 })
	if v := testutil.ToFloat64(n.metrics.attempts.WithLabelValues(webhook.TypeRejected, "http_error")); v != 2 {
		t.Errorf("%v failed attempts counted, want 2", v)
	}
}

// TestDeadLetter: a receiver that always fails gets MaxAttempts attempts,
// then the event is in the dead-letter list and the metric says so.
func TestDeadLetter(t *testing.T) {
	priv, pub := testKey(t)
	rcv := newReceiver(t, pub, 500, 500, 500, 500, 500, 500)
	n := newNotifier(t, t.TempDir(), priv, nil, rcv.srv.URL, rcv.pool(), loopback)
	stop := run(t, n)
	defer stop()
	if err := n.Alarm(time.Now(), webhook.AlarmData{Kind: webhook.AlarmFork, Witness: "fg-a", TreeSize: 10}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		rcv.next(t)
	}
	waitFor(t, func() bool { d, _ := n.Dead(); return len(d) == 1 })
	// The metrics follow the move to the dead-letter folder, on the
	// delivery goroutine: wait for them rather than race it.
	waitFor(t, func() bool {
		return testutil.ToFloat64(n.metrics.deadLettered.WithLabelValues(webhook.TypeAlarm)) == 1
	})
	if p, _ := n.Pending(); len(p) != 0 {
		t.Errorf("still pending: %v", p)
	}
	if v := testutil.ToFloat64(n.metrics.dead); v != 1 {
		t.Errorf("dead-letter gauge %v", v)
	}
	if v := testutil.ToFloat64(n.metrics.deadLettered.WithLabelValues(webhook.TypeAlarm)); v != 1 {
		t.Errorf("dead-lettered counter %v", v)
	}
	select {
	case d := <-rcv.received:
		t.Errorf("a fifth attempt was made: %+v", d)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRedirectNotFollowed: a target answering 307 to another receiver is
// not followed; the other receiver never hears of the event.
func TestRedirectNotFollowed(t *testing.T) {
	priv, pub := testKey(t)
	other := newReceiver(t, pub)
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	pool := x509.NewCertPool()
	pool.AddCert(redirector.Certificate())
	pool.AddCert(other.srv.Certificate())
	n := newNotifier(t, t.TempDir(), priv, map[string]string{"party-a": redirector.URL}, "", pool, loopback)
	stop := run(t, n)
	defer stop()
	if err := n.Findings(context.Background(), "party-a", time.Now(), []webhook.FindingEvent{{EventID: eventID, LeafIndex: 4, Rules: []webhook.RuleHit{{Rule: "consent_missing", Field: "legal_basis"}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return testutil.ToFloat64(n.metrics.attempts.WithLabelValues(webhook.TypeFindings, "redirect_refused")) >= 2
	})
	select {
	case d := <-other.received:
		t.Fatalf("the redirect was followed: %+v", d)
	default:
	}
}

// TestPrivateAddressRefused: without the loopback range allowed, a target
// on 127.0.0.1 is refused at dial time; the receiver hears nothing.
func TestPrivateAddressRefused(t *testing.T) {
	priv, pub := testKey(t)
	rcv := newReceiver(t, pub)
	// "localhost" resolves at dial time; the check is on the address.
	url := "https://localhost:" + rcv.srv.URL[len("https://127.0.0.1:"):]
	n := newNotifier(t, t.TempDir(), priv, map[string]string{"party-a": url, "party-b": rcv.srv.URL}, "", rcv.pool(), nil)
	stop := run(t, n)
	defer stop()
	for _, p := range []string{"party-a", "party-b"} {
		if err := n.Rejected(context.Background(), p, time.Now(), []webhook.RejectedEvent{{Reason: "malformed"}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		return testutil.ToFloat64(n.metrics.attempts.WithLabelValues(webhook.TypeRejected, "refused_address")) >= 4
	})
	select {
	case d := <-rcv.received:
		t.Fatalf("a private address was reached: %+v", d)
	default:
	}
	for _, c := range []struct {
		ip    string
		allow bool
	}{{"127.0.0.1", false}, {"10.1.2.3", false}, {"192.168.1.1", false}, {"169.254.169.254", false}, {"::1", false},
		{"fd00::1", false}, {"::ffff:10.0.0.1", false}, {"100.64.0.1", false}, {"203.0.113.9", true}, {"2001:db8::1", true}, {"8.8.8.8", true}} {
		if got := AddressAllowed(netip.MustParseAddr(c.ip), nil); got != c.allow {
			t.Errorf("AddressAllowed(%s) = %v", c.ip, got)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://hooks.example.nl/spoor", false, true},
		{"http://hooks.example.nl/spoor", false, false},
		{"http://hooks.example.nl/spoor", true, false},
		{"http://127.0.0.1:9000/", true, true},
		{"http://localhost:9000/", false, false},
		{"https://user:pw@hooks.example.nl/", false, false},
		{"ftp://hooks.example.nl/", false, false},
		{"https:///nohost", false, false},
	} {
		if err := CheckURL(c.url, c.loopback); (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, %v) = %v", c.url, c.loopback, err)
		}
	}
}

// TestPayloadsCarryNoPersonalData: whatever the notices, the bodies sent
// hold no BSN-like nine-digit number and no pseudonym (64 hex digits).
func TestPayloadsCarryNoPersonalData(t *testing.T) {
	priv, pub := testKey(t)
	rcv := newReceiver(t, pub)
	n := newNotifier(t, t.TempDir(), priv, map[string]string{"party-a": rcv.srv.URL}, rcv.srv.URL, rcv.pool(), loopback)
	stop := run(t, n)
	defer stop()
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.Rejected(ctx, "party-a", time.Now(), []webhook.RejectedEvent{{EventID: eventID, Reason: "bad_signature", StreamSeq: 123456782}}))
	must(n.Findings(ctx, "party-a", time.Now(), []webhook.FindingEvent{{EventID: eventID, LeafIndex: 9, Rules: []webhook.RuleHit{{Rule: "special_category_without_exception", Field: "categories[0]"}}}}))
	must(n.Alarm(time.Now(), webhook.AlarmData{Kind: webhook.AlarmRollback, Witness: "fg-b", TreeSize: 5, WitnessSize: 7}))
	// Refused before anything is queued: a pseudonym where an id goes.
	if err := n.Rejected(ctx, "party-a", time.Now(), []webhook.RejectedEvent{{EventID: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", Reason: "malformed"}}); err == nil {
		t.Error("a pseudonym-shaped event id was queued")
	}
	pseudonym := regexp.MustCompile(`[0-9a-f]{64}`)
	bsnField := regexp.MustCompile(`"[a-z_]*":"?[0-9]{9}"?[,}]`)
	for range 3 {
		d := rcv.next(t)
		if d.err != nil {
			t.Fatal(d.err)
		}
		if pseudonym.Match(d.body) {
			t.Errorf("a pseudonym-shaped value in %s", d.body)
		}
		// The one nine-digit number is the stream sequence we chose; a
		// BSN-shaped value under any other key would be a leak.
		for _, m := range bsnField.FindAll(d.body, -1) {
			if !bytes.HasPrefix(m, []byte(`"stream_seq"`)) {
				t.Errorf("a BSN-shaped value %s in %s", m, d.body)
			}
		}
	}
}

// TestOutboxSurvivesReopen: an event queued and not delivered is still
// there for a new Notifier on the same folder, with the same id.
func TestOutboxSurvivesReopen(t *testing.T) {
	priv, pub := testKey(t)
	dir := t.TempDir()
	rcv := newReceiver(t, pub)
	n := newNotifier(t, dir, priv, map[string]string{"party-a": rcv.srv.URL}, "", rcv.pool(), loopback)
	if err := n.Rejected(context.Background(), "party-a", time.Now(), []webhook.RejectedEvent{{Reason: "malformed"}}); err != nil {
		t.Fatal(err)
	}
	before, _ := n.Pending()
	n2 := newNotifier(t, dir, priv, map[string]string{"party-a": rcv.srv.URL}, "", rcv.pool(), loopback)
	if v := testutil.ToFloat64(n2.metrics.pending); v != 1 {
		t.Errorf("reopened outbox counts %v", v)
	}
	stop := run(t, n2)
	defer stop()
	if d := rcv.next(t); d.err != nil || d.id != before[0] {
		t.Errorf("delivered %q (%v), queued %v", d.id, d.err, before)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutboxRemovesInterruptedWrites: the temporary file of a durable write
// that a crash interrupted (before its rename) is removed at open; the
// events themselves stay.
func TestOutboxRemovesInterruptedWrites(t *testing.T) {
	dir := t.TempDir()
	o, err := openOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	it := &item{ID: "01a252eb-1c3d-7be5-b015-92406973f120", Type: webhook.TypeAlarm, Body: []byte(`{}`)}
	if err := o.put(it); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{outboxDir, deadDir} {
		if err := os.WriteFile(filepath.Join(dir, sub, "."+it.ID+".json.tmp-562147142"), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := openOutbox(dir); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{outboxDir, deadDir} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("%s still holds %s", sub, e.Name())
			}
		}
	}
	if ids, _ := o.ids(outboxDir); len(ids) != 1 || ids[0] != it.ID {
		t.Errorf("the outbox holds %v after open", ids)
	}
}
