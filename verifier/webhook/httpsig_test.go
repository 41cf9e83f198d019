package webhook

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The RFC 9421 test key (Appendix B.1.4), in JWK base64url.
const (
	rfcEd25519D = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
	rfcEd25519X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
)

func rfcKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	d, err := base64.RawURLEncoding.DecodeString(rfcEd25519D)
	if err != nil {
		t.Fatal(err)
	}
	x, err := base64.RawURLEncoding.DecodeString(rfcEd25519X)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(d)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), x) {
		t.Fatal("the RFC's seed does not give the RFC's public key")
	}
	return priv, x
}

// rfcRequest is the request of RFC 9421 Appendix B.2 as a server receives
// it, with the B.2.6 signature fields.
func rfcRequest(t testing.TB, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("POST", "http://example.com/foo?param=Value&Pet=dog", strings.NewReader(body))
	r.Host = "example.com"
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:")
	r.Header.Set("Content-Length", "18")
	r.Header.Set("Signature-Input", `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	r.Header.Set("Signature", "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:")
	return r
}

const rfcBody = `{"hello": "world"}`

// TestRFC9421B26 verifies the RFC's own Ed25519 example with this
// package's verifier, and checks the signature base byte for byte.
func TestRFC9421B26(t *testing.T) {
	_, pub := rfcKey(t)
	r := rfcRequest(t, rfcBody)
	opts := VerifyOptions{
		Keys:     map[string]ed25519.PublicKey{"test-key-ed25519": pub},
		Required: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"},
		MaxAge:   -1,
		Now:      func() time.Time { return time.Unix(1618884473, 0) },
	}
	v, err := Verify(r, []byte(rfcBody), opts)
	if err != nil {
		t.Fatalf("the RFC's B.2.6 signature does not verify: %v", err)
	}
	if v.Label != "sig-b26" || v.KeyID != "test-key-ed25519" || v.Created.Unix() != 1618884473 {
		t.Errorf("verified %+v", v)
	}
	inputs, err := parseSignatureInput(r.Header.Get("Signature-Input"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := signatureBase(r, inputs["sig-b26"], "")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`"date": Tue, 20 Apr 2021 02:07:55 GMT`,
		`"@method": POST`,
		`"@path": /foo`,
		`"@authority": example.com`,
		`"content-type": application/json`,
		`"content-length": 18`,
		`"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
	}, "\n")
	if base != want {
		t.Errorf("signature base:\n%s\nwant:\n%s", base, want)
	}
	// Ed25519 is deterministic: signing the base with the RFC's key gives
	// the RFC's signature.
	priv, _ := rfcKey(t)
	if got := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(base))); "sig-b26=:"+got+":" != r.Header.Get("Signature") {
		t.Errorf("signing the base gives %s", got)
	}

	// The same request with another body: the sha-512 digest (checked
	// even when not covered) no longer matches.
	if _, err := Verify(rfcRequest(t, rfcBody), []byte(`{"hello": "World"}`), opts); !errors.Is(err, ErrSignature) {
		t.Errorf("a changed body verified: %v", err)
	}
	// Spoor's default requirements are not met by the RFC's components.
	def := opts
	def.Required = nil
	if _, err := Verify(rfcRequest(t, rfcBody), []byte(rfcBody), def); err == nil || !strings.Contains(err.Error(), "@target-uri") {
		t.Errorf("a signature without @target-uri passed the default requirements: %v", err)
	}
	// A changed covered header fails.
	r2 := rfcRequest(t, rfcBody)
	r2.Header.Set("Date", "Tue, 20 Apr 2021 02:07:56 GMT")
	if _, err := Verify(r2, []byte(rfcBody), opts); err == nil {
		t.Error("a changed date verified")
	}
}

func newKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// TestSignVerifyOverHTTP signs a request as the ledger does, sends it to a
// real TLS server, and verifies it there as a receiver would; then each
// tampering is refused.
func TestSignVerifyOverHTTP(t *testing.T) {
	priv, pub := newKey(t)
	keys := map[string]ed25519.PublicKey{KeyID(pub): pub}
	type got struct {
		err  error
		hdr  http.Header
		body []byte
	}
	results := make(chan got, 1)
	var tamper func(r *http.Request, body []byte) []byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		body := buf.Bytes()
		if tamper != nil {
			body = tamper(r, body)
		}
		_, err := Verify(r, body, VerifyOptions{Keys: keys})
		results <- got{err, r.Header.Clone(), body}
	}))
	defer srv.Close()
	send := func(body []byte) error {
		req, err := http.NewRequest("POST", srv.URL+"/hook?x=1", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ContentType)
		if err := Sign(req, body, priv, KeyID(pub), time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return (<-results).err
	}
	body := []byte(`{"specversion":"1.0"}`)
	if err := send(body); err != nil {
		t.Fatalf("a signed request does not verify at the receiver: %v", err)
	}
	cases := map[string]func(r *http.Request, body []byte) []byte{
		"body": func(_ *http.Request, b []byte) []byte { return append(bytes.Clone(b), ' ') },
		"content-type": func(r *http.Request, b []byte) []byte {
			r.Header.Set("Content-Type", "application/json")
			return b
		},
		"target-uri": func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "x=2"; return b },
		"method":     func(r *http.Request, b []byte) []byte { r.Method = "PUT"; return b },
		"digest and body": func(r *http.Request, b []byte) []byte {
			nb := append(bytes.Clone(b), ' ')
			r.Header.Set("Content-Digest", ContentDigest(nb))
			return nb
		},
		"signature": func(r *http.Request, b []byte) []byte {
			s := r.Header.Get("Signature")
			r.Header.Set("Signature", s[:len(s)-4]+"AAA:")
			return b
		},
		"unknown key": func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), "spoor-notify-", "other-", 1))
			return b
		},
	}
	for name, f := range cases {
		tamper = f
		if err := send(body); !errors.Is(err, ErrSignature) {
			t.Errorf("tampered %s: verified (%v)", name, err)
		}
	}
	tamper = nil
	// A stale signature is a replay.
	req, _ := http.NewRequest("POST", srv.URL+"/hook", bytes.NewReader(body))
	req.Header.Set("Content-Type", ContentType)
	if err := Sign(req, body, priv, KeyID(pub), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := (<-results).err; err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("an hour-old signature: %v", err)
	}
}

func TestParseSignatureInputStrict(t *testing.T) {
	bad := []string{
		``,
		`a=("x";sf)`,
		`a=("x""y")`,
		`a=("x" y)`,
		`a=("x");created=1.5`,
		`a=("x");created=1, a=("y");created=2`,
		`A=("x")`,
		`a=("x"`,
		`a=("x");keyid="é"`,
		`a=("x"),`,
		`a=:AAAA:`,
		`a=("x");created=1234567890123456`,
	}
	for _, s := range bad {
		if _, err := parseSignatureInput(s); err == nil {
			t.Errorf("parseSignatureInput(%q) accepted", s)
		}
	}
	good := `sig1=("@method" "@target-uri" "content-digest" "content-type");created=1700000000;keyid="k\"1";alg="ed25519", sig2=();nonce="n";x=?0`
	m, err := parseSignatureInput(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := "sig1=" + m["sig1"].serialize() + ", sig2=" + m["sig2"].serialize(); got != good {
		t.Errorf("round trip:\n%s\n%s", got, good)
	}
}

// FuzzParseSignatureInput: the parser never panics, and what it accepts
// serializes to a value it parses back to the same thing.
func FuzzParseSignatureInput(f *testing.F) {
	f.Add(`sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	f.Add(`spoor=("@method" "@target-uri" "content-digest" "content-type");created=1700000000;keyid="spoor-notify-0011223344556677";alg="ed25519"`)
	f.Add(`a=();x=?1;y=:AAAA:;z=-5, b=("q\\")`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseSignatureInput(s)
		if err != nil {
			return
		}
		for label, sp := range m {
			again, err := parseSignatureInput(label + "=" + sp.serialize())
			if err != nil {
				t.Fatalf("%q: the serialization %q does not parse: %v", s, sp.serialize(), err)
			}
			if again[label].serialize() != sp.serialize() {
				t.Fatalf("%q: not stable", s)
			}
		}
	})
}

// BenchmarkSignVerify signs and verifies one notification request of a
// typical size (a rejected notice listing ten events).
func BenchmarkSignVerify(b *testing.B) {
	priv, pub := newKey(b)
	keys := map[string]ed25519.PublicKey{KeyID(pub): pub}
	body := bytes.Repeat([]byte(`{"event_id":"01936b2e-7c4d-7abc-8def-0123456789ab","reason":"bad_signature"},`), 10)
	for b.Loop() {
		req, _ := http.NewRequest("POST", "https://hooks.example.nl/spoor", bytes.NewReader(body))
		req.Header.Set("Content-Type", ContentType)
		if err := Sign(req, body, priv, KeyID(pub), time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := Verify(req, body, VerifyOptions{Keys: keys}); err != nil {
			b.Fatal(err)
		}
	}
}
