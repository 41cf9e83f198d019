package gateway_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/gateway"
)

// testCA is a certificate authority made in the test: the stand-in for
// PKIoverheid's private-services CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Test PKI"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for a server (ip set) or for an organisation's
// client, whose subject serialNumber is oin as in a PKIoverheid
// certificate.
func (ca *testCA) issue(t *testing.T, org, oin string, ip net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: org, Organization: []string{org}, Country: []string{"NL"}, SerialNumber: oin},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mtlsClient is an HTTP client presenting cert (none if nil) and trusting
// ca for the server.
func mtlsClient(ca *testCA, cert *tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: waitLong}
}

// TestMutualTLS runs the gateway on a real TLS listener that requires
// client certificates from a CA made here. A certificate's subject
// serialNumber is an OIN, which the demo covenant maps to a party: a
// client publishes for that party only, with or without a token, and a
// token of another party, an OIN of no party or of a party whose key the
// gateway lacks, a serialNumber that is no OIN, no certificate or one of
// another CA are each refused, as problem+json naming the mismatch where
// the handshake got that far, and publish nothing.
func TestMutualTLS(t *testing.T) {
	r := newRig(t, true, waitLong)
	cov := r.env.Demo.Signed.Covenant
	oin := func(party string) string {
		p, ok := cov.Party(party)
		if !ok || p.OIN == "" {
			t.Fatalf("the demo covenant has no OIN for %s", party)
		}
		return p.OIN
	}
	ca, rogue := newTestCA(t, "Test PKIoverheid Private Services CA"), newTestCA(t, "Someone Else's CA")
	cfg := r.cfg
	cfg.RequireClientCert = true
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := gateway.MutualTLSConfig(ca.issue(t, "gateway.gemeente.example", "", net.IPv4(127, 0, 0, 1)), ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw.Handler())
	srv.TLS = tlsCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)

	certA := ca.issue(t, "Gemeente Amersfoort", oin(partyA), nil)
	certUnknown := ca.issue(t, "Gemeente Elders", "00000099999999999999", nil)
	certNoOIN := ca.issue(t, "Gemeente Amersfoort", "AMF-1", nil)
	certNotHeld := ca.issue(t, "Gemeente Baarn", oin("gemeente-baarn"), nil)
	certRogue := rogue.issue(t, "Gemeente Amersfoort", oin(partyA), nil)

	post := func(c *http.Client, token, key string, body []byte) (response, error) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/disclosures", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Idempotency-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return response{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), bsn) {
			t.Errorf("an answer repeats the number: %s", b)
		}
		return response{resp.StatusCode, resp.Header, b}, nil
	}
	problem := func(res response, status int, code string, detail ...string) {
		t.Helper()
		var p gateway.Problem
		if res.status != status || res.header.Get("Content-Type") != gateway.ProblemContentType || json.Unmarshal(res.body, &p) != nil || p.Code != code {
			t.Fatalf("got %d %s %s, want %d problem %s", res.status, res.header.Get("Content-Type"), res.body, status, code)
		}
		for _, d := range detail {
			if !strings.Contains(string(res.body), d) {
				t.Errorf("the problem does not name %q: %s", d, res.body)
			}
		}
	}
	mustPost := func(c *http.Client, token, key string, body []byte) response {
		t.Helper()
		res, err := post(c, token, key, body)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		return res
	}

	// The certificate alone names the party: committed.
	clientA := mtlsClient(ca, &certA)
	res := mustPost(clientA, "", "mtls-1", input(nil))
	if res.status != http.StatusOK {
		t.Fatalf("POST with party A's certificate: %d %s", res.status, res.body)
	}
	first := decodeResult(t, res.body)
	r.verifyReceipt(first)
	// With the same party's token as well: the same event, nothing new.
	res = mustPost(clientA, tokenA, "mtls-1", input(nil))
	if res.status != http.StatusOK || decodeResult(t, res.body).EventID != first.EventID {
		t.Fatalf("retry with certificate and token: %d %s", res.status, res.body)
	}

	bus := r.onBus()
	// The line names the other party as discloser.
	problem(mustPost(clientA, "", "mtls-2", input(func(m map[string]any) { m["discloser"] = partyB })),
		http.StatusForbidden, gateway.ProblemOtherParty, "OIN "+oin(partyA), "that of party "+partyA)
	// Party A's certificate with party B's token.
	problem(mustPost(clientA, tokenB, "mtls-3", input(nil)), http.StatusForbidden, gateway.ProblemClientMismatch,
		"token is for party "+partyB, "OIN "+oin(partyA)+" is that of party "+partyA)
	// An unknown token beside a good certificate is still refused.
	problem(mustPost(clientA, "no-such-token", "mtls-4", input(nil)), http.StatusUnauthorized, gateway.ProblemUnauthorized)
	// OINs of nobody, of a party whose key the gateway lacks, and no OIN.
	problem(mustPost(mtlsClient(ca, &certUnknown), "", "mtls-5", input(nil)), http.StatusForbidden, gateway.ProblemClientCertificate,
		"OIN 00000099999999999999", "not the OIN of any party of covenant version 1")
	problem(mustPost(mtlsClient(ca, &certNotHeld), "", "mtls-6", input(nil)), http.StatusForbidden, gateway.ProblemClientCertificate,
		"that of party gemeente-baarn, whose key this gateway does not hold")
	problem(mustPost(mtlsClient(ca, &certNoOIN), tokenA, "mtls-7", input(nil)), http.StatusForbidden, gateway.ProblemClientCertificate,
		"not an OIN")
	// No certificate, or one of another CA: the handshake fails.
	for name, c := range map[string]*http.Client{"none": mtlsClient(ca, nil), "rogue CA": mtlsClient(ca, &certRogue)} {
		if res, err := post(c, tokenA, "mtls-8", input(nil)); err == nil {
			t.Errorf("client certificate %s: answered %d %s, want a failed handshake", name, res.status, res.body)
		}
	}
	if got := r.onBus(); got != bus {
		t.Fatalf("the refused requests published %d messages", got-bus)
	}

	// Without TLS a gateway that requires certificates admits nobody, not
	// even a good token.
	plain := httptest.NewServer(gw.Handler())
	t.Cleanup(plain.Close)
	req, _ := http.NewRequest(http.MethodPost, plain.URL+"/v1/disclosures", bytes.NewReader(input(nil)))
	req.Header.Set("Authorization", "Bearer "+tokenA)
	req.Header.Set("Idempotency-Key", "mtls-9")
	req.Header.Set("Content-Type", "application/json")
	problem(r.do(req), http.StatusUnauthorized, gateway.ProblemClientCertificate, "requires mutual TLS")
	if got := r.onBus(); got != bus {
		t.Fatalf("the refused requests published %d messages", got-bus)
	}
}
