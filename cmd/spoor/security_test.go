package main

// Who may do what, on a real `spoor serve` (a child process, as an operator
// runs it): per-party NATS users made from natsbus.PartyPermissions, the
// ledger's check that NATS subject, discloser and signing key agree, TLS
// on the NATS and HTTP listeners, and the refusal to open the bus beyond
// this machine without users.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natsserver"
	"github.com/spoor-ledger/spoor/internal/synth"
)

// secReady bounds a start of spoor serve in these tests.
const secReady = 60 * time.Second

// runBin runs the spoor binary with stdin and returns what it printed and
// its exit code.
func runBin(t *testing.T, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("spoor %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// violationLog collects the permission errors the server sends a client.
type violationLog struct {
	mu   sync.Mutex
	errs []string
}

func (v *violationLog) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		v.mu.Lock()
		v.errs = append(v.errs, err.Error())
		v.mu.Unlock()
	}
}

// saw reports whether a violation naming subject arrives within 2 seconds.
func (v *violationLog) saw(subject string) bool {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(e, `"`+subject+`"`) {
				v.mu.Unlock()
				return true
			}
		}
		v.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// disclosureLine makes a JSON line for spoor publish: a synthetic
// disclosure without the fields the publisher fills in.
func disclosureLine(t *testing.T, d *events.Disclosure) string {
	t.Helper()
	p, err := d.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "salt")
	delete(m, "discloser")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// nextBy returns the generator's next disclosure by party (synthetic
// traffic, each party in turn).
func nextBy(t *testing.T, gen *synth.Generator, party string) *events.Disclosure {
	t.Helper()
	for range 10000 {
		if d, _ := gen.Next(); d.Discloser == party {
			return d
		}
	}
	t.Fatalf("the generator made no disclosure by %s", party)
	return nil
}

func TestServeNATSUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "nats-users.json")
	srv := newServeProc(t, bin, dir, "--nats-users", usersFile, "--idle-cosign", "-1s")
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(secReady); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.interrupt(30 * time.Second); err != nil {
			t.Error(err)
		}
	}()

	m, err := demo.Load(filepath.Join(srv.data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	var users natsserver.UsersFile
	if err := json.Unmarshal([]byte(readFile(t, usersFile)), &users); err != nil {
		t.Fatalf("the users file: %v", err)
	}
	if len(users.Users) != len(m.Parties) {
		t.Fatalf("the users file has %d users for %d parties", len(users.Users), len(m.Parties))
	}
	for party := range m.Parties {
		path := filepath.Join(credentialsDir(srv.data), party+".nk")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("no seed file for %s: %v", party, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("seed file of %s has mode %v, want 0600", party, fi.Mode().Perm())
		}
		if seed := strings.TrimSpace(readFile(t, path)); !strings.HasPrefix(seed, "SU") || srv.runLogContains(seed) {
			t.Errorf("the seed of %s is not a user seed, or the serve log shows it", party)
		}
	}

	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 7, 50)
	if err != nil {
		t.Fatal(err)
	}
	partyA, partyB := "gemeente-amersfoort", "swv-de-eem"
	if m.Parties[partyA] == nil || m.Parties[partyB] == nil {
		t.Fatalf("the demo covenant lacks %s or %s", partyA, partyB)
	}
	seedA := filepath.Join(credentialsDir(srv.data), partyA+".nk")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("no credentials, no connection", func(t *testing.T) {
		nc, err := nats.Connect(srv.natsURL(), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatal("connected without credentials")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("connect without credentials: %v, want an authorization error", err)
		}
	})

	// Party A's system, connected the way docs/security.md says.
	v := &violationLog{}
	nkeyOpt, err := nats.NkeyOptionFromSeed(seedA)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.natsURL(), nkeyOpt, nats.CustomInboxPrefix(natsbus.InboxPrefix(partyA)), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatalf("party %s connecting with its seed: %v", partyA, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pubA, err := natsbus.NewPublisher(js, m.Parties[partyA], natsbus.WithAckTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, time.Second)
		t.Cleanup(cancel)
		return c
	}

	t.Run("a party publishes and gets its receipt", func(t *testing.T) {
		d := nextBy(t, gen, partyA)
		res, err := pubA.Publish(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pubA.WaitReceipt(ctx, d.ID, res.EnvelopeHash)
		if err != nil || r.Status != natsbus.ReceiptCommitted {
			t.Fatalf("receipt: %+v, %v", r, err)
		}
	})

	t.Run("spoor publish with the party's seed", func(t *testing.T) {
		keyFile := filepath.Join(srv.data, "demo-keys", demo.PartyKeyFile(partyA))
		line := disclosureLine(t, nextBy(t, gen, partyA))
		out, errOut, code := runBin(t, bin, line, "publish", "--key", keyFile, "--nats", srv.natsURL(), "--nats-nkey", seedA, "--wait", "30s")
		if code != 0 || !strings.Contains(out, "published 1") {
			t.Fatalf("spoor publish with --nats-nkey: exit %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = runBin(t, bin, line, "publish", "--key", keyFile, "--nats", srv.natsURL())
		if code == 0 || !strings.Contains(strings.ToLower(out+errOut), "authorization") {
			t.Fatalf("spoor publish without credentials: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("spoor simulate connects per party with the seeds", func(t *testing.T) {
		out, errOut, code := runBin(t, bin, "", "simulate", "--data", srv.data, "--nats", srv.natsURL(), "--events", "40", "--seed", "11", "--wait", "60s")
		if code != 0 || !strings.Contains(out, "committed 40") {
			t.Fatalf("spoor simulate under --nats-users: exit %d\n%s%s", code, out, errOut)
		}
		empty := t.TempDir()
		_, errOut, code = runBin(t, bin, "", "simulate", "--data", srv.data, "--nats", srv.natsURL(), "--events", "1", "--nats-credentials", empty)
		if code == 0 || !strings.Contains(errOut, "has no seed for party") {
			t.Fatalf("spoor simulate with an empty credentials folder: exit %d, %s", code, errOut)
		}
	})

	t.Run("cannot publish on another party's subject", func(t *testing.T) {
		d := nextBy(t, gen, partyB)
		events.Seal(d, m.Parties[partyB])
		env, err := events.Sign(d, m.Parties[partyB])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pubA.PublishEnvelope(short(), partyB, env); err == nil {
			t.Error("published on another party's subject")
		}
		if !v.saw(natsbus.DisclosureSubject(partyB)) {
			t.Error("no permission violation for another party's subject")
		}
	})
	t.Run("cannot create a consumer or read the stream", func(t *testing.T) {
		if _, err := js.CreateConsumer(short(), natsbus.Stream, jetstream.ConsumerConfig{Durable: "snoop", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
			t.Error("created a consumer on SPOOR")
		}
		if _, err := nc.RequestWithContext(short(), "$JS.API.CONSUMER.MSG.NEXT.SPOOR.ledger", []byte(`{"batch":1}`)); err == nil {
			t.Error("pulled from the ledger's consumer")
		}
		if !v.saw("$JS.API.CONSUMER.MSG.NEXT.SPOOR.ledger") {
			t.Error("no permission violation for pulling from SPOOR")
		}
		if _, err := nc.RequestWithContext(short(), "$JS.API.STREAM.MSG.GET.SPOOR", []byte(`{"seq":1}`)); err == nil {
			t.Error("read a message of SPOOR directly")
		}
		sub, err := nc.SubscribeSync("spoor.disclosures.>")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if !v.saw("spoor.disclosures.>") {
			t.Error("no permission violation for subscribing to every disclosure")
		}
	})
	t.Run("cannot read another party's rejections or receipts", func(t *testing.T) {
		if _, err := natsbus.Rejections(short(), js, partyB); err == nil {
			t.Error("bound to another party's rejections")
		}
		if _, err := natsbus.RequestReceipt(short(), nc, partyB, nextBy(t, gen, partyB).ID, [32]byte{}); err == nil {
			t.Error("asked for receipts on another party's subject")
		}
	})

	// The ledger checks that subject, discloser and signing key agree: what
	// a party may publish on its own subject but in another's name is
	// refused, and the party reads why on its own rejections.
	t.Run("subject, discloser and signing key must agree", func(t *testing.T) {
		dB := nextBy(t, gen, partyB)
		events.Seal(dB, m.Parties[partyB])
		envB, err := events.Sign(dB, m.Parties[partyB])
		if err != nil {
			t.Fatal(err)
		}
		// B's own envelope, relayed on A's subject.
		relay := nats.NewMsg(natsbus.DisclosureSubject(partyA))
		relay.Data = envB
		if _, err := js.PublishMsg(ctx, relay); err != nil {
			t.Fatal(err)
		}
		// An event in A's name signed with B's key.
		dA := nextBy(t, gen, partyA)
		events.Seal(dA, m.Parties[partyA])
		payload, err := dA.MarshalCanonical()
		if err != nil {
			t.Fatal(err)
		}
		forged := nats.NewMsg(natsbus.DisclosureSubject(partyA))
		forged.Data = events.SignEnvelope(events.PayloadType, payload, m.Parties[partyB].Private)
		if _, err := js.PublishMsg(ctx, forged); err != nil {
			t.Fatal(err)
		}
		want := map[string]events.Reason{dB.ID: events.ReasonWrongSubject, dA.ID: events.ReasonKeyNotInForce}
		cons, err := natsbus.Rejections(ctx, js, partyA)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]events.Reason{}
		deadline := time.Now().Add(time.Minute)
		for len(got) < len(want) && time.Now().Before(deadline) {
			batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for msg := range batch.Messages() {
				r, err := natsbus.ParseRejection(msg.Data())
				if err != nil {
					t.Fatal(err)
				}
				got[r.EventID] = r.Reason
				_ = msg.Ack()
			}
		}
		for id, reason := range want {
			if got[id] != reason {
				t.Errorf("event %s: rejection %q, want %q (all: %v)", id, got[id], reason, got)
			}
		}
	})
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "spoor test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	writePEM := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.ca = writePEM("ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: ips, DNSNames: []string{"localhost"},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(name+".pem", "CERTIFICATE", der), writePEM(name+".key", "EC PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func TestServeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	srv := newServeProc(t, bin, dir, "--idle-cosign", "-1s",
		"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey,
		"--nats-tls-cert", pki.serverCert, "--nats-tls-key", pki.serverKey, "--nats-ca", pki.ca)
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.interrupt(30 * time.Second); err != nil {
			t.Error(err)
		}
	}()
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}}}
	base := "https://" + srv.httpAddr
	deadline := time.Now().Add(secReady)
	for {
		resp, err := https.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if !srv.running() || time.Now().After(deadline) {
			t.Fatalf("spoor serve with TLS did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("HTTPS, and no plain HTTP", func(t *testing.T) {
		resp, err := https.Get(base + "/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /checkpoint over HTTPS: %d", resp.StatusCode)
		}
		plain := &http.Client{Timeout: 5 * time.Second}
		if resp, err := plain.Get("http://" + srv.httpAddr + "/checkpoint"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("the checkpoint was served over plain HTTP")
			}
		}
	})

	m, err := demo.Load(filepath.Join(srv.data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 11, 20)
	if err != nil {
		t.Fatal(err)
	}
	party := "gemeente-amersfoort"
	tlsURL := "tls://" + srv.natsAddr

	t.Run("NATS needs TLS and a client certificate", func(t *testing.T) {
		for name, opts := range map[string][]nats.Option{
			"plain":                   nil,
			"TLS without client cert": {nats.RootCAs(pki.ca)},
		} {
			nc, err := nats.Connect("nats://"+srv.natsAddr, append(opts, nats.MaxReconnects(0), nats.Timeout(3*time.Second))...)
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", name)
			}
		}
		nc, err := nats.Connect(tlsURL, nats.RootCAs(pki.ca), nats.ClientCert(pki.clientCert, pki.clientKey),
			nats.CustomInboxPrefix(natsbus.InboxPrefix(party)))
		if err != nil {
			t.Fatalf("TLS with a client certificate: %v", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := natsbus.NewPublisher(js, m.Parties[party])
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d := nextBy(t, gen, party)
		res, err := pub.Publish(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := pub.WaitReceipt(ctx, d.ID, res.EnvelopeHash); err != nil || r.Status != natsbus.ReceiptCommitted {
			t.Fatalf("receipt over TLS: %+v, %v", r, err)
		}
	})

	t.Run("spoor publish over TLS", func(t *testing.T) {
		keyFile := filepath.Join(srv.data, "demo-keys", demo.PartyKeyFile(party))
		line := disclosureLine(t, nextBy(t, gen, party))
		out, errOut, code := runBin(t, bin, line, "publish", "--key", keyFile, "--nats", tlsURL,
			"--nats-ca", pki.ca, "--nats-client-cert", pki.clientCert, "--nats-client-key", pki.clientKey, "--wait", "30s")
		if code != 0 || !strings.Contains(out, "published 1") {
			t.Fatalf("spoor publish over TLS: exit %d\n%s%s", code, out, errOut)
		}
	})
}

// TestServeRefusesOpenBus: an embedded NATS server on a non-loopback
// address without NATS users would let anyone who reaches it publish as
// any party; serve refuses to start so.
func TestServeRefusesOpenBus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	_, errOut, code := runBin(t, bin, "", "serve", "--data", filepath.Join(dir, "data"), "--http", freeAddr(t),
		"--nats-listen", fmt.Sprintf("0.0.0.0:%d", freePort(t)))
	if code == 0 || !strings.Contains(errOut, "without --nats-users") {
		t.Fatalf("serve on 0.0.0.0 without --nats-users: exit %d, %s", code, errOut)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func TestNATSClientFlags(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]natsClientFlags{
		"two credentials":            {user: "ledger", passwordFile: pw, creds: pw},
		"user without password file": {user: "ledger"},
		"password file without user": {passwordFile: pw},
		"missing seed file":          {nkey: filepath.Join(dir, "none.nk")},
		"CA that is no certificate":  {ca: pw},
		"client cert without key":    {cert: pw},
	} {
		if _, err := f.options(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if opts, err := (&natsClientFlags{user: "ledger", passwordFile: pw}).options(); err != nil || len(opts) != 1 {
		t.Errorf("user and password file: %d options, %v", len(opts), err)
	}
	got := redactURLs("tls://ledger:secret@nats-1:4222,tls://ledger:secret@nats-2:4222,nats://127.0.0.1:4222")
	if strings.Contains(got, "secret") || !strings.Contains(got, "nats-2:4222") {
		t.Errorf("redactURLs = %q", got)
	}
}
