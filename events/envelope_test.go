package events_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/spoor-ledger/spoor/events"
)

// These tests pin the byte format of disclosure envelopes. The golden vectors
// in testdata/envelope are what another implementation (in any language) has
// to reproduce byte for byte; docs/wire-format.md shows one of them as its
// worked example, and TestWireFormatDoc keeps the two in step.

func init() {
	// Registered only when nobody else in this test binary did: the covenant
	// tests of this package may define the same flag.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata and the worked example in docs/wire-format.md")
	}
}

// updateGolden reports whether -update was given.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// goldenOrigin is the origin (log name) of every golden vector.
const goldenOrigin = "spoor.regio-amersfoort.example/ledger"

const vectorDir = "testdata/envelope"

// testResolver is a small events.KeyResolver for these tests: per party, its
// keys with validity windows, the way a covenant version lists them.
type testResolver map[string][]testPartyKey

// testPartyKey is one key of a party in a testResolver. A zero until means
// open-ended; revoked means a later covenant version revoked it.
type testPartyKey struct {
	pub     ed25519.PublicKey
	from    time.Time
	until   time.Time
	revoked bool
}

func (r testResolver) PartyKey(party, keyID string, t time.Time) (ed25519.PublicKey, error) {
	keys, ok := r[party]
	if !ok {
		return nil, fmt.Errorf("party %q is not in the covenant: %w", party, events.ErrUnknownParty)
	}
	for _, k := range keys {
		if events.KeyID(k.pub) != keyID {
			continue
		}
		switch {
		case k.revoked:
			return nil, fmt.Errorf("party %q: key was revoked: %w", party, events.ErrKeyRevoked)
		case t.Before(k.from), !k.until.IsZero() && !t.Before(k.until):
			return nil, fmt.Errorf("party %q: key is valid from %s until %s, not at %s: %w",
				party, k.from.Format(time.DateOnly), k.until.Format(time.DateOnly), t.Format(time.RFC3339), events.ErrKeyNotInForce)
		}
		return k.pub, nil
	}
	return nil, fmt.Errorf("party %q has no key with that fingerprint: %w", party, events.ErrKeyNotInForce)
}

var (
	validFrom  = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	validUntil = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// goldenResolver knows the parties of every golden vector, each with its
// vector key valid through 2025 and 2026.
func goldenResolver(tb testing.TB) testResolver {
	tb.Helper()
	r := testResolver{}
	for _, name := range vectorNames(tb) {
		v := computeVector(tb, name)
		r[v.Key.Party] = append(r[v.Key.Party], testPartyKey{pub: v.Key.Public(), from: validFrom, until: validUntil})
	}
	return r
}

// vectorInput is a vector's input.json: the fixed key material and the
// disclosure before Seal.
type vectorInput struct {
	Comment       string          `json:"comment"`
	Party         string          `json:"party"`
	SeedHex       string          `json:"ed25519_seed_hex"`
	SaltSecretHex string          `json:"salt_secret_hex"`
	Disclosure    json.RawMessage `json:"disclosure"`
}

// vectorExpected is a vector's expected.json: the derived values a second
// implementation must reproduce.
type vectorExpected struct {
	PublicKey      string `json:"public_key_base64"`
	KeyID          string `json:"keyid"`
	Salt           string `json:"salt"`
	PayloadBytes   int    `json:"payload_bytes"`
	PAEBytes       int    `json:"pae_bytes"`
	Sig            string `json:"sig"`
	EnvelopeBytes  int    `json:"envelope_bytes"`
	EnvelopeSHA256 string `json:"envelope_sha256"`
	NATSSubject    string `json:"nats_subject"`
	NATSMsgID      string `json:"nats_msg_id"`
}

// goldenVector is one vector as this implementation computes it now.
type goldenVector struct {
	Name       string
	Input      vectorInput
	Key        *events.PartyKey
	Disclosure *events.Disclosure // sealed
	Payload    []byte
	PAE        []byte
	Envelope   []byte
	Sig        []byte
	Expected   vectorExpected
}

// files returns the output files of the vector by name.
func (v *goldenVector) files(tb testing.TB) map[string][]byte {
	tb.Helper()
	exp, err := json.MarshalIndent(v.Expected, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return map[string][]byte{
		"payload.json":  v.Payload,
		"pae.bin":       v.PAE,
		"envelope.json": v.Envelope,
		"expected.json": append(exp, '\n'),
	}
}

func vectorNames(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		tb.Fatalf("no golden vectors in %s", vectorDir)
	}
	return names
}

// computeVector reads a vector's inputs and runs Seal and Sign on them.
func computeVector(tb testing.TB, name string) *goldenVector {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, name, "input.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var in vectorInput
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		tb.Fatalf("%s/input.json: %v", name, err)
	}
	seed, err := hex.DecodeString(in.SeedHex)
	if err != nil || len(seed) != ed25519.SeedSize {
		tb.Fatalf("%s: ed25519_seed_hex must be 32 bytes of hex", name)
	}
	secret, err := hex.DecodeString(in.SaltSecretHex)
	if err != nil || len(secret) < 16 {
		tb.Fatalf("%s: salt_secret_hex must be at least 16 bytes of hex", name)
	}
	key := &events.PartyKey{Party: in.Party, Private: ed25519.NewKeyFromSeed(seed), SaltSecret: secret}
	d, err := events.DecodeDisclosureJSON(in.Disclosure)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	events.Seal(d, key)
	env, err := events.Sign(d, key)
	if err != nil {
		tb.Fatalf("%s: Sign: %v", name, err)
	}
	payload, err := d.MarshalCanonical()
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := events.ParseEnvelope(env)
	if err != nil {
		tb.Fatalf("%s: ParseEnvelope of a fresh envelope: %v", name, err)
	}
	sum := sha256.Sum256(env)
	pae := events.PAE(events.PayloadType, payload)
	return &goldenVector{
		Name:       name,
		Input:      in,
		Key:        key,
		Disclosure: d,
		Payload:    payload,
		PAE:        pae,
		Envelope:   env,
		Sig:        parsed.Sig,
		Expected: vectorExpected{
			PublicKey:      base64.StdEncoding.EncodeToString(key.Public()),
			KeyID:          key.KeyID(),
			Salt:           d.Salt,
			PayloadBytes:   len(payload),
			PAEBytes:       len(pae),
			Sig:            base64.StdEncoding.EncodeToString(parsed.Sig),
			EnvelopeBytes:  len(env),
			EnvelopeSHA256: hex.EncodeToString(sum[:]),
			NATSSubject:    "spoor.disclosures." + d.Discloser,
			NATSMsgID:      d.ID + "." + hex.EncodeToString(sum[:])[:16],
		},
	}
}

// encodeEnvelopeForTest is this test's own encoding of a strict-profile
// envelope, to compare with the package's.
func encodeEnvelopeForTest(payloadType string, payload []byte, keyID string, sig []byte) []byte {
	type signature struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	v := struct {
		PayloadType string      `json:"payloadType"`
		Payload     string      `json:"payload"`
		Signatures  []signature `json:"signatures"`
	}{payloadType, base64.StdEncoding.EncodeToString(payload), []signature{{keyID, base64.StdEncoding.EncodeToString(sig)}}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // strings only: cannot happen
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// firstDifference describes where two byte strings part, for failure messages.
func firstDifference(got, want []byte) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			lo := max(0, i-20)
			return fmt.Sprintf("first difference at byte %d: got %q, want %q", i, got[lo:min(len(got), i+20)], want[lo:min(len(want), i+20)])
		}
	}
	return fmt.Sprintf("one is a prefix of the other: got %d bytes, want %d", len(got), len(want))
}

func TestGoldenVectors(t *testing.T) {
	keys := goldenResolver(t)
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			v := computeVector(t, name)
			for file, got := range v.files(t) {
				path := filepath.Join(vectorDir, name, file)
				if updateGolden() {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file: %s", file, firstDifference(got, want))
				}
			}

			// Recompute each derived value here, independently of the package.
			pub := v.Key.Public()
			fp := sha256.Sum256(pub)
			if want := hex.EncodeToString(fp[:]); v.Expected.KeyID != want {
				t.Errorf("keyid = %s, want hex(SHA-256(public key)) = %s", v.Expected.KeyID, want)
			}
			m := hmac.New(sha256.New, v.Key.SaltSecret)
			m.Write([]byte("spoor/salt/v1\x00" + v.Disclosure.ID))
			if want := base64.StdEncoding.EncodeToString(m.Sum(nil)[:16]); v.Disclosure.Salt != want {
				t.Errorf("salt = %s, want %s", v.Disclosure.Salt, want)
			}
			wantPAE := fmt.Sprintf("DSSEv1 %d %s %d %s", len(events.PayloadType), events.PayloadType, len(v.Payload), v.Payload)
			if string(v.PAE) != wantPAE {
				t.Errorf("PAE differs from the DSSE definition: %s", firstDifference(v.PAE, []byte(wantPAE)))
			}
			if !ed25519.Verify(pub, v.PAE, v.Sig) {
				t.Error("signature does not verify over the PAE")
			}
			if want := encodeEnvelopeForTest(events.PayloadType, v.Payload, v.Expected.KeyID, v.Sig); !bytes.Equal(v.Envelope, want) {
				t.Errorf("envelope is not the plain JSON encoding: %s", firstDifference(v.Envelope, want))
			}
			if bytes.HasSuffix(v.Payload, []byte("\n")) || bytes.HasSuffix(v.Envelope, []byte("\n")) {
				t.Error("canonical bytes end in a newline")
			}
			for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`, `\u00e9`} {
				if bytes.Contains(v.Payload, []byte(esc)) {
					t.Errorf("payload contains the escape %s; the canonical form writes the character itself", esc)
				}
			}

			d, env, err := events.Open(v.Envelope, goldenOrigin, keys)
			if err != nil {
				t.Fatalf("Open(golden envelope) = %v", err)
			}
			if !bytes.Equal(env.Raw, v.Envelope) || !bytes.Equal(env.Payload, v.Payload) || env.KeyID != v.Expected.KeyID {
				t.Error("Open returned an envelope that is not the golden one")
			}
			if again, _ := d.MarshalCanonical(); !bytes.Equal(again, v.Payload) {
				t.Errorf("opened disclosure re-encodes differently: %s", firstDifference(again, v.Payload))
			}
		})
	}
}

// TestGoldenVectorsCoverCanonicalRules makes sure the vectors exercise the
// rules they are documented to show, so a later edit cannot quietly drop one.
func TestGoldenVectorsCoverCanonicalRules(t *testing.T) {
	full := computeVector(t, "full")
	for _, want := range []string{"é", "ë", "<3 weken>", " & ", `\n`, `"occurred_at":"2025-03-18T15:04:05.12Z"`, `"consent":{`, `"corrects":"`} {
		if !bytes.Contains(full.Payload, []byte(want)) {
			t.Errorf("vector full: payload does not contain %q", want)
		}
	}
	basic := computeVector(t, "basic")
	for _, absent := range []string{`"consent"`, `"case_ref"`, `"corrects"`, `"exception"`} {
		if bytes.Contains(basic.Payload, []byte(absent)) {
			t.Errorf("vector basic: payload contains %s, which should be omitted when empty", absent)
		}
	}
}

// dsseEd25519 adapts an Ed25519 key to go-securesystemslib's
// dsse.SignerVerifier, so that library can sign and verify Spoor envelopes.
type dsseEd25519 struct {
	priv ed25519.PrivateKey // nil for a verifier only
	pub  ed25519.PublicKey
}

func (k dsseEd25519) Sign(_ context.Context, data []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errors.New("verifier only")
	}
	return ed25519.Sign(k.priv, data), nil
}

func (k dsseEd25519) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(k.pub, data, sig) {
		return errors.New("ed25519: invalid signature")
	}
	return nil
}

func (k dsseEd25519) KeyID() (string, error)   { return events.KeyID(k.pub), nil }
func (k dsseEd25519) Public() crypto.PublicKey { return k.pub }

// TestDSSECrossCheck checks Spoor's envelopes against an independent DSSE
// implementation, in both directions.
func TestDSSECrossCheck(t *testing.T) {
	ctx := context.Background()
	keys := goldenResolver(t)
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			v := computeVector(t, name)
			adapter := dsseEd25519{priv: v.Key.Private, pub: v.Key.Public()}

			if got, want := dsse.PAE(events.PayloadType, v.Payload), events.PAE(events.PayloadType, v.Payload); !bytes.Equal(got, want) {
				t.Errorf("PAE differs from go-securesystemslib's: %s", firstDifference(want, got))
			}

			// events.Sign -> the library verifies.
			var e dsse.Envelope
			if err := json.Unmarshal(v.Envelope, &e); err != nil {
				t.Fatal(err)
			}
			verifier, err := dsse.NewEnvelopeVerifier(dsseEd25519{pub: v.Key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			accepted, body, err := verifier.VerifyAndDecode(ctx, &e)
			if err != nil {
				t.Fatalf("go-securesystemslib rejects events.Sign's envelope: %v", err)
			}
			if len(accepted) != 1 || accepted[0].KeyID != v.Expected.KeyID || !bytes.Equal(body, v.Payload) {
				t.Errorf("go-securesystemslib accepted %d keys (keyid %v), payload equal: %v", len(accepted), accepted, bytes.Equal(body, v.Payload))
			}
			// A flipped signature bit must fail there too, or the check above proves nothing.
			flipped := slices.Clone(v.Sig)
			flipped[10] ^= 0x01
			var bad dsse.Envelope
			if err := json.Unmarshal(encodeEnvelopeForTest(events.PayloadType, v.Payload, v.Expected.KeyID, flipped), &bad); err != nil {
				t.Fatal(err)
			}
			if _, err := verifier.Verify(ctx, &bad); err == nil {
				t.Error("go-securesystemslib accepts a flipped signature bit")
			}

			// The library signs -> canonical re-encoding -> events.Open.
			signer, err := dsse.NewEnvelopeSigner(adapter)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := signer.SignPayload(ctx, events.PayloadType, v.Payload)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(theirs); err != nil {
				t.Fatal(err)
			}
			reencoded := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if !bytes.Equal(reencoded, v.Envelope) {
				t.Errorf("go-securesystemslib's envelope, re-encoded, differs from events.Sign's: %s", firstDifference(reencoded, v.Envelope))
			}
			if _, _, err := events.Open(reencoded, goldenOrigin, keys); err != nil {
				t.Errorf("events.Open rejects go-securesystemslib's envelope: %v", err)
			}
		})
	}

	// PAE on edge inputs: empty payload, multi-byte type, binary payload.
	for _, c := range []struct{ typ, body string }{
		{"", ""}, {events.PayloadType, ""}, {"application/ë+json", "{}"}, {"x", "\x00\xff\n DSSEv1 1 x"},
	} {
		if got, want := events.PAE(c.typ, []byte(c.body)), dsse.PAE(c.typ, []byte(c.body)); !bytes.Equal(got, want) {
			t.Errorf("PAE(%q, %q) = %q, go-securesystemslib says %q", c.typ, c.body, got, want)
		}
	}
}

// checkLevel says which lower-level function must already reject a case
// that Open rejects.
type checkLevel int

const (
	levelOpen     checkLevel = iota // only Open sees it (validation, origin, keys, signature)
	levelEnvelope                   // ParseEnvelope rejects it with the same reason
	levelPayload                    // the envelope parses; DecodeDisclosure rejects its payload
)

// rejectCase is one bad input to Open with the reason and a fragment of the
// message it must produce.
type rejectCase struct {
	name     string
	input    []byte
	origin   string       // "" means goldenOrigin
	keys     testResolver // nil means goldenResolver
	reason   events.Reason
	fragment string
	level    checkLevel
}

// rejectCases builds the bad inputs from the basic golden vector. Payload
// edits are re-signed with the vector's key, so each case fails for its one
// reason and not for a broken signature.
func rejectCases(tb testing.TB) []rejectCase {
	tb.Helper()
	v := computeVector(tb, "basic")
	k := v.Key
	keyID := k.KeyID()
	b64 := base64.StdEncoding.EncodeToString
	payloadB64 := b64(v.Payload)
	sigB64 := b64(v.Sig)
	sigs := `[{"keyid":"` + keyID + `","sig":"` + sigB64 + `"}]`
	pt := `"` + events.PayloadType + `"`
	rawEnv := func(payloadType, payload, signatures string) []byte {
		return []byte(`{"payloadType":` + payloadType + `,"payload":"` + payload + `","signatures":` + signatures + `}`)
	}
	if !bytes.Equal(rawEnv(pt, payloadB64, sigs), v.Envelope) {
		tb.Fatal("rawEnv does not rebuild the golden envelope")
	}
	signPayload := func(payload []byte) []byte { return events.SignEnvelope(events.PayloadType, payload, k.Private) }
	payloadWith := func(edit func(d *events.Disclosure)) []byte {
		d := *v.Disclosure
		d.Recipients = slices.Clone(d.Recipients)
		d.Categories = slices.Clone(d.Categories)
		edit(&d)
		p, err := d.MarshalCanonical()
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	withDisclosure := func(edit func(d *events.Disclosure)) []byte { return signPayload(payloadWith(edit)) }
	withPayloadText := func(old, repl string) []byte {
		if !bytes.Contains(v.Payload, []byte(old)) {
			tb.Fatalf("basic payload does not contain %q", old)
		}
		return signPayload(bytes.Replace(v.Payload, []byte(old), []byte(repl), 1))
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	otherKeyID := events.KeyID(other.Public().(ed25519.PublicKey))

	// A URL-safe encoding differs only where the standard one has '+' or '/',
	// which plain ASCII JSON rarely produces: add text until it does.
	var urlSafe []byte
	for _, extra := range []string{"?", " ?", "  ?", "ë", " ë", "  ë"} {
		p := payloadWith(func(d *events.Disclosure) { d.Justification += extra })
		if std := b64(p); strings.ContainsAny(std, "+/") {
			signed, err := events.ParseEnvelope(signPayload(p))
			if err != nil {
				tb.Fatal(err)
			}
			urlSafe = rawEnv(pt, base64.URLEncoding.EncodeToString(p), `[{"keyid":"`+keyID+`","sig":"`+b64(signed.Sig)+`"}]`)
			break
		}
	}
	if urlSafe == nil {
		tb.Fatal("no payload variant has '+' or '/' in its base64")
	}
	// The signature is 64 bytes: its base64 ends in "==", and the character
	// before them carries 4 unused bits that strict decoding requires to be 0.
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	loose := []byte(sigB64)
	loose[85] = alphabet[strings.IndexByte(alphabet, loose[85])|1]

	flipped := slices.Clone(v.Sig)
	flipped[0] ^= 0x01
	longSig := append(slices.Clone(v.Sig), 0)
	revoked := testResolver{k.Party: {{pub: k.Public(), from: validFrom, until: validUntil, revoked: true}}}

	reorderedPayload := bytes.Replace(v.Payload, []byte(`{"schema":"spoor.disclosure/v1","origin":"`+goldenOrigin+`"`),
		[]byte(`{"origin":"`+goldenOrigin+`","schema":"spoor.disclosure/v1"`), 1)
	if bytes.Equal(reorderedPayload, v.Payload) {
		tb.Fatal("could not reorder the basic payload")
	}
	htmlEscaped := signPayload(bytes.Replace(payloadWith(func(d *events.Disclosure) { d.Justification = "ouders & school" }),
		[]byte("&"), []byte(`\u0026`), 1))

	return []rejectCase{
		// The envelope itself.
		{name: "empty input", input: nil, reason: events.ReasonMalformed, fragment: "empty input", level: levelEnvelope},
		{name: "not JSON", input: []byte("this is not JSON"), reason: events.ReasonMalformed, fragment: "not a DSSE envelope", level: levelEnvelope},
		{name: "JSON array", input: []byte("[" + string(v.Envelope) + "]"), reason: events.ReasonMalformed, fragment: "wrong type (got JSON array", level: levelEnvelope},
		{name: "JSON null", input: []byte("null"), reason: events.ReasonMalformed, fragment: "0 signatures", level: levelEnvelope},
		{name: "two signatures", input: rawEnv(pt, payloadB64, strings.Replace(sigs, "}]", "},"+sigs[1:], 1)), reason: events.ReasonMalformed, fragment: "2 signatures, want exactly 1", level: levelEnvelope},
		{name: "zero signatures", input: rawEnv(pt, payloadB64, "[]"), reason: events.ReasonMalformed, fragment: "0 signatures, want exactly 1", level: levelEnvelope},
		{name: "unknown envelope field", input: bytes.Replace(v.Envelope, []byte(`{"payloadType"`), []byte(`{"payloadEncoding":"base64","payloadType"`), 1), reason: events.ReasonMalformed, fragment: `an unknown member (its name is not repeated)`, level: levelEnvelope},
		{name: "unknown signature field", input: rawEnv(pt, payloadB64, strings.Replace(sigs, `"}]`, `","cert":""}]`, 1)), reason: events.ReasonMalformed, fragment: `an unknown member (its name is not repeated)`, level: levelEnvelope},
		{name: "envelope fields in another order", input: []byte(`{"payload":"` + payloadB64 + `","payloadType":` + pt + `,"signatures":` + sigs + `}`), reason: events.ReasonNonCanonical, fragment: "not the canonical encoding", level: levelEnvelope},
		{name: "signature fields in another order", input: rawEnv(pt, payloadB64, `[{"sig":"`+sigB64+`","keyid":"`+keyID+`"}]`), reason: events.ReasonNonCanonical, fragment: "not the canonical encoding", level: levelEnvelope},
		{name: "whitespace added", input: bytes.Replace(v.Envelope, []byte(`","signatures":`), []byte(`", "signatures": `), 1), reason: events.ReasonNonCanonical, fragment: "no whitespace", level: levelEnvelope},
		{name: "trailing newline", input: append(slices.Clone(v.Envelope), '\n'), reason: events.ReasonNonCanonical, fragment: "not the canonical encoding", level: levelEnvelope},
		{name: "escaped character in payloadType", input: rawEnv(`"application/vnd.spoor.disclosure.v1\u002bjson"`, payloadB64, sigs), reason: events.ReasonNonCanonical, fragment: "not the canonical encoding", level: levelEnvelope},
		{name: "URL-safe base64 payload", input: urlSafe, reason: events.ReasonNonCanonical, fragment: "payload is not strict standard padded base64", level: levelEnvelope},
		{name: "base64 with a line break", input: rawEnv(pt, payloadB64[:76]+`\n`+payloadB64[76:], sigs), reason: events.ReasonNonCanonical, fragment: "not the canonical encoding", level: levelEnvelope},
		{name: "unpadded base64 sig", input: rawEnv(pt, payloadB64, strings.Replace(sigs, sigB64, strings.TrimRight(sigB64, "="), 1)), reason: events.ReasonNonCanonical, fragment: "sig is not strict standard padded base64", level: levelEnvelope},
		{name: "base64 sig with non-zero padding bits", input: rawEnv(pt, payloadB64, strings.Replace(sigs, sigB64, string(loose), 1)), reason: events.ReasonNonCanonical, fragment: "sig is not strict standard padded base64", level: levelEnvelope},
		{name: "sig of wrong length", input: rawEnv(pt, payloadB64, strings.Replace(sigs, sigB64, b64(longSig), 1)), reason: events.ReasonMalformed, fragment: "sig is 65 bytes", level: levelEnvelope},
		{name: "no payloadType", input: rawEnv(`""`, payloadB64, sigs), reason: events.ReasonMalformed, fragment: "no payloadType", level: levelEnvelope},
		{name: "trailing data after the envelope", input: append(slices.Clone(v.Envelope), "{}"...), reason: events.ReasonMalformed, fragment: "data after the JSON object", level: levelEnvelope},
		{name: "over 64 KiB", input: withDisclosure(func(d *events.Disclosure) { d.Justification = strings.Repeat("a", 50000) }), reason: events.ReasonTooLarge, fragment: "the limit is 65536", level: levelEnvelope},
		{name: "wrong payloadType", input: events.SignEnvelope("application/vnd.in-toto+json", v.Payload, k.Private), reason: events.ReasonMalformed, fragment: `payloadType is not application/vnd.spoor.disclosure.v1+json`},

		// The payload.
		{name: "payload not JSON", input: signPayload([]byte("schema=spoor.disclosure/v1")), reason: events.ReasonMalformed, fragment: "disclosure payload", level: levelPayload},
		{name: "payload is a JSON array", input: signPayload([]byte("[]")), reason: events.ReasonMalformed, fragment: "wrong type (got JSON array", level: levelPayload},
		{name: "payload with unknown field", input: withPayloadText(`,"salt":`, `,"bsn_hint":"x","salt":`), reason: events.ReasonMalformed, fragment: `an unknown member (its name is not repeated)`, level: levelPayload},
		{name: "payload wrong type (number for string)", input: withPayloadText(`"purpose":"toelaatbaarheidsverklaring"`, `"purpose":42`), reason: events.ReasonMalformed, fragment: "field purpose: wrong type (got JSON number, want string)", level: levelPayload},
		{name: "payload wrong type (string for list)", input: withPayloadText(`"recipients":["gemeente-amersfoort"]`, `"recipients":"gemeente-amersfoort"`), reason: events.ReasonMalformed, fragment: "field recipients: wrong type (got JSON string", level: levelPayload},
		{name: "time without zone", input: withPayloadText(`"2025-03-14T09:26:53Z"`, `"2025-03-14T09:26:53"`), reason: events.ReasonMalformed, fragment: "not RFC 3339 with a zone", level: levelPayload},
		{name: "time as a date only", input: withPayloadText(`"2025-03-14T09:26:53Z"`, `"2025-03-14"`), reason: events.ReasonMalformed, fragment: "not RFC 3339 with a zone", level: levelPayload},
		{name: "time not UTC", input: withPayloadText(`"2025-03-14T09:26:53Z"`, `"2025-03-14T10:26:53+01:00"`), reason: events.ReasonInvalid, fragment: "occurred_at: must be in UTC"},
		{name: "time with +00:00 instead of Z", input: withPayloadText(`"2025-03-14T09:26:53Z"`, `"2025-03-14T09:26:53+00:00"`), reason: events.ReasonNonCanonical, fragment: "times in UTC with Z", level: levelPayload},
		{name: "time with a zero fraction", input: withPayloadText(`"2025-03-14T09:26:53Z"`, `"2025-03-14T09:26:53.000Z"`), reason: events.ReasonNonCanonical, fragment: "not in canonical form", level: levelPayload},
		{name: "payload with spaces", input: withPayloadText(`{"schema":"spoor.disclosure/v1",`, `{"schema": "spoor.disclosure/v1", `), reason: events.ReasonNonCanonical, fragment: "no spaces", level: levelPayload},
		{name: "payload keys in another order", input: signPayload(reorderedPayload), reason: events.ReasonNonCanonical, fragment: "fields in schema order", level: levelPayload},
		{name: "payload HTML-escaped", input: htmlEscaped, reason: events.ReasonNonCanonical, fragment: "no HTML escaping", level: levelPayload},
		{name: "payload with non-ASCII escaped", input: withPayloadText("Aanvraag", `\u0041anvraag`), reason: events.ReasonNonCanonical, fragment: "not in canonical form", level: levelPayload},
		{name: "payload with an empty optional field", input: withPayloadText(`,"salt":`, `,"case_ref":"","salt":`), reason: events.ReasonNonCanonical, fragment: "not in canonical form", level: levelPayload},
		{name: "payload with a trailing newline", input: signPayload(append(slices.Clone(v.Payload), '\n')), reason: events.ReasonNonCanonical, fragment: "not in canonical form", level: levelPayload},
		{name: "trailing data after the payload", input: signPayload(append(slices.Clone(v.Payload), "{}"...)), reason: events.ReasonMalformed, fragment: "data after the JSON object", level: levelPayload},

		// Validation of a canonical payload.
		{name: "invalid UUID", input: withDisclosure(func(d *events.Disclosure) { d.ID = "not-a-uuid" }), reason: events.ReasonInvalid, fragment: "id: must be a lower-case UUIDv7"},
		{name: "UUID not version 7", input: withDisclosure(func(d *events.Disclosure) { d.ID = "3f2a6c1e-8b4d-4e7a-9c2b-5d1e0f3a7b9c" }), reason: events.ReasonInvalid, fragment: "id: must be a lower-case UUIDv7"},
		{name: "UUID in upper case", input: withDisclosure(func(d *events.Disclosure) { d.ID = strings.ToUpper(d.ID) }), reason: events.ReasonInvalid, fragment: "id: must be a lower-case UUIDv7"},
		{name: "trace id too short", input: withDisclosure(func(d *events.Disclosure) { d.TraceID = d.TraceID[1:] }), reason: events.ReasonInvalid, fragment: "trace_id: must be 32 lower-case hex"},
		{name: "trace id all zero", input: withDisclosure(func(d *events.Disclosure) { d.TraceID = strings.Repeat("0", 32) }), reason: events.ReasonInvalid, fragment: "not all zero"},
		{name: "recipients empty", input: withDisclosure(func(d *events.Disclosure) { d.Recipients = []string{} }), reason: events.ReasonInvalid, fragment: "recipients: must name 1 to 50 parties"},
		{name: "discloser is a recipient", input: withDisclosure(func(d *events.Disclosure) { d.Recipients = append(d.Recipients, d.Discloser) }), reason: events.ReasonInvalid, fragment: "recipients[1]: is the discloser itself"},

		// The log, the party, its keys and the signature.
		{name: "wrong origin", input: v.Envelope, origin: "spoor.waterweg.example/ledger", reason: events.ReasonWrongOrigin, fragment: `this log is "spoor.waterweg.example/ledger"`},
		{name: "unknown party", input: withDisclosure(func(d *events.Disclosure) { d.Discloser = "onbekende-partij" }), reason: events.ReasonUnknownParty, fragment: "unknown party"},
		{name: "key not yet valid", input: withDisclosure(func(d *events.Disclosure) { d.OccurredAt = time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC) }), reason: events.ReasonKeyNotInForce, fragment: "key not in force"},
		{name: "key no longer valid", input: withDisclosure(func(d *events.Disclosure) { d.OccurredAt = validUntil }), reason: events.ReasonKeyNotInForce, fragment: "key not in force"},
		{name: "revoked key", input: v.Envelope, keys: revoked, reason: events.ReasonKeyRevoked, fragment: "key revoked"},
		{name: "keyid not the fingerprint", input: rawEnv(pt, payloadB64, strings.Replace(sigs, keyID, strings.ToUpper(keyID), 1)), reason: events.ReasonKeyNotInForce, fragment: "no key with that fingerprint"},
		{name: "signature by another key", input: bytes.Replace(events.SignEnvelope(events.PayloadType, v.Payload, other), []byte(otherKeyID), []byte(keyID), 1), reason: events.ReasonBadSignature, fragment: "signature does not verify"},
		{name: "keyid and signature of another key", input: events.SignEnvelope(events.PayloadType, v.Payload, other), reason: events.ReasonKeyNotInForce, fragment: "no key with that fingerprint"},
		{name: "flipped signature bit", input: encodeEnvelopeForTest(events.PayloadType, v.Payload, keyID, flipped), reason: events.ReasonBadSignature, fragment: "signature does not verify"},
		{name: "payload changed after signing", input: encodeEnvelopeForTest(events.PayloadType, bytes.Replace(v.Payload, []byte("under-12"), []byte("16-plus"), 1), keyID, v.Sig), reason: events.ReasonBadSignature, fragment: "signature does not verify"},
	}
}

func TestOpenRejects(t *testing.T) {
	keys := goldenResolver(t)
	cases := rejectCases(t)
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			origin, r := goldenOrigin, keys
			if c.origin != "" {
				origin = c.origin
			}
			if c.keys != nil {
				r = c.keys
			}
			d, env, err := events.Open(c.input, origin, r)
			if err == nil {
				t.Fatalf("Open accepted it (disclosure %v, envelope %v)", d != nil, env != nil)
			}
			checkReject(t, "Open", err, c.reason, c.fragment)

			switch c.level {
			case levelEnvelope:
				_, err := events.ParseEnvelope(c.input)
				checkReject(t, "ParseEnvelope", err, c.reason, c.fragment)
			case levelPayload:
				parsed, err := events.ParseEnvelope(c.input)
				if err != nil {
					t.Fatalf("ParseEnvelope: %v", err)
				}
				_, err = events.DecodeDisclosure(parsed.Payload)
				if err == nil {
					t.Fatal("DecodeDisclosure accepted the payload")
				}
				if !strings.Contains(err.Error(), c.fragment) {
					t.Errorf("DecodeDisclosure: %q does not contain %q", err, c.fragment)
				}
				if got := errors.Is(err, events.ErrNonCanonical); got != (c.reason == events.ReasonNonCanonical) {
					t.Errorf("DecodeDisclosure: errors.Is(err, ErrNonCanonical) = %v for reason %s", got, c.reason)
				}
			case levelOpen:
				if _, err := events.ParseEnvelope(c.input); err != nil {
					t.Errorf("ParseEnvelope already rejects it: %v", err)
				}
			}
		})
	}
}

// TestCheckUnsignedIsOpenButTheSignature: on an envelope that parses and
// decodes, CheckUnsigned reaches Open's verdict and reason, except where
// Open refuses only the signature: the golden vectors and every rejection
// case.
func TestCheckUnsignedIsOpenButTheSignature(t *testing.T) {
	keys := goldenResolver(t)
	cases := rejectCases(t)
	for _, name := range vectorNames(t) {
		cases = append(cases, rejectCase{name: "vector " + name, input: computeVector(t, name).Envelope})
	}
	compared := 0
	for _, c := range cases {
		origin, r := goldenOrigin, keys
		if c.origin != "" {
			origin = c.origin
		}
		if c.keys != nil {
			r = c.keys
		}
		env, err := events.ParseEnvelope(c.input)
		if err != nil {
			continue
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			continue
		}
		compared++
		_, _, openErr := events.Open(c.input, origin, r)
		err = events.CheckUnsigned(env, d, origin, r)
		var want, got *events.RejectError
		errors.As(openErr, &want)
		errors.As(err, &got)
		switch {
		case openErr == nil && err != nil:
			t.Errorf("%s: Open accepts it, CheckUnsigned says %v", c.name, err)
		case openErr != nil && err == nil && want.Reason != events.ReasonBadSignature:
			t.Errorf("%s: CheckUnsigned accepts it, Open says %v", c.name, openErr)
		case openErr != nil && err != nil && (got == nil || got.Reason != want.Reason):
			t.Errorf("%s: CheckUnsigned says %v, Open %v", c.name, err, openErr)
		}
	}
	if compared < 10 {
		t.Fatalf("only %d cases parse and decode", compared)
	}
}

// TestOpenManyIsOpen: OpenMany gives every envelope of a batch exactly
// Open's outcome, whatever else is in the batch: good envelopes, every
// rejection case, a forged signature among good ones.
func TestOpenManyIsOpen(t *testing.T) {
	keys := goldenResolver(t)
	var batch [][]byte
	for _, name := range vectorNames(t) {
		batch = append(batch, computeVector(t, name).Envelope)
	}
	good := len(batch)
	for _, c := range rejectCases(t) {
		if c.origin == "" && c.keys == nil {
			batch = append(batch, c.input, batch[len(batch)%good])
		}
	}
	if good < 2 || len(batch) < 40 {
		t.Fatalf("only %d good and %d envelopes in all", good, len(batch))
	}
	check := func(name string, batch [][]byte) {
		t.Helper()
		got := events.OpenMany(batch, goldenOrigin, keys)
		if len(got) != len(batch) {
			t.Fatalf("%s: %d outcomes for %d envelopes", name, len(got), len(batch))
		}
		bad := 0
		for i, b := range batch {
			d, env, err := events.Open(b, goldenOrigin, keys)
			o := got[i]
			if (err == nil) != (o.Err == nil) || err != nil && err.Error() != o.Err.Error() {
				t.Errorf("%s: envelope %d: OpenMany says %v, Open says %v", name, i, o.Err, err)
				continue
			}
			if err != nil {
				bad++
				if o.Disclosure != nil || o.Envelope != nil {
					t.Errorf("%s: envelope %d refused but with a disclosure", name, i)
				}
				continue
			}
			if !reflect.DeepEqual(o.Disclosure, d) || !bytes.Equal(o.Envelope.Raw, env.Raw) {
				t.Errorf("%s: envelope %d opened to another disclosure", name, i)
			}
		}
		if bad == 0 || bad == len(batch) {
			t.Errorf("%s: %d of %d refused; the batch should mix both", name, bad, len(batch))
		}
	}
	check("all cases", batch)
	// Only good envelopes and one forged signature: the batch equation
	// fails, and only the forgery is refused.
	forged := append([]byte(nil), batch[0]...)
	e, err := events.ParseEnvelope(forged)
	if err != nil {
		t.Fatal(err)
	}
	sig := append([]byte(nil), e.Sig...)
	sig[40] ^= 1
	forged = bytes.Replace(forged, []byte(base64.StdEncoding.EncodeToString(e.Sig)), []byte(base64.StdEncoding.EncodeToString(sig)), 1)
	check("one forgery", append(append(slices.Clone(batch[:good]), forged), batch[:good]...))
}

func checkReject(t *testing.T, fn string, err error, reason events.Reason, fragment string) {
	t.Helper()
	var re *events.RejectError
	if !errors.As(err, &re) {
		t.Fatalf("%s: error %v (%T) is not a *RejectError", fn, err, err)
	}
	if re.Reason != reason {
		t.Errorf("%s: reason %s, want %s (%v)", fn, re.Reason, reason, err)
	}
	if !strings.Contains(err.Error(), fragment) {
		t.Errorf("%s: %q does not contain %q", fn, err, fragment)
	}
	if !strings.HasPrefix(err.Error(), string(re.Reason)+": ") {
		t.Errorf("%s: message %q does not start with its reason code", fn, err)
	}
}

// TestOpenWrapsValidationErrors checks that a rejected invalid event still
// names every field, through the *RejectError.
func TestOpenWrapsValidationErrors(t *testing.T) {
	v := computeVector(t, "basic")
	d := *v.Disclosure
	d.TraceID = "XYZ"
	d.Channel = "fax"
	p, err := d.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = events.Open(events.SignEnvelope(events.PayloadType, p, v.Key.Private), goldenOrigin, goldenResolver(t))
	var ves events.ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("errors.As(%v, ValidationErrors) = false", err)
	}
	var fields []string
	for _, ve := range ves {
		fields = append(fields, ve.Field)
	}
	if !slices.Equal(fields, []string{"trace_id", "channel"}) {
		t.Errorf("fields %v, want [trace_id channel]", fields)
	}
}

func TestEnvelopeVerify(t *testing.T) {
	v := computeVector(t, "basic")
	env, err := events.ParseEnvelope(v.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Verify(v.Key.Public()); err != nil {
		t.Errorf("Verify with the right key: %v", err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	checkReject(t, "Verify", env.Verify(other), events.ReasonBadSignature, "keyid is not the fingerprint")
	// A keyid that claims the other key still fails: the signature is not its.
	env.KeyID = events.KeyID(other)
	checkReject(t, "Verify", env.Verify(other), events.ReasonBadSignature, "signature does not verify")
}

// TestSignIsIdempotent: a retry after a lost ack re-signs the same disclosure
// and must produce the same bytes; only the salt secret (per party) changes them.
func TestSignIsIdempotent(t *testing.T) {
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			v := computeVector(t, name)
			sign := func(k *events.PartyKey) []byte {
				d, err := events.DecodeDisclosureJSON(v.Input.Disclosure)
				if err != nil {
					t.Fatal(err)
				}
				events.Seal(d, k)
				env, err := events.Sign(d, k)
				if err != nil {
					t.Fatal(err)
				}
				return env
			}
			first, second := sign(v.Key), sign(v.Key)
			if !bytes.Equal(first, second) || !bytes.Equal(first, v.Envelope) {
				t.Errorf("Seal+Sign twice gave different bytes: %s", firstDifference(second, first))
			}
			otherSecret := *v.Key
			otherSecret.SaltSecret = bytes.Repeat([]byte{0x5a}, 32)
			third := sign(&otherSecret)
			if bytes.Equal(third, first) {
				t.Error("another salt secret gave the same bytes")
			}
			a, _ := events.ParseEnvelope(first)
			b, _ := events.ParseEnvelope(third)
			if bytes.Equal(a.Payload, b.Payload) {
				t.Error("another salt secret gave the same payload")
			}
			if _, _, err := events.Open(third, goldenOrigin, goldenResolver(t)); err != nil {
				t.Errorf("Open(envelope with another salt) = %v", err)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	v := computeVector(t, "basic")
	fresh := func() *events.Disclosure {
		d, err := events.DecodeDisclosureJSON(v.Input.Disclosure)
		if err != nil {
			t.Fatal(err)
		}
		events.Seal(d, v.Key)
		return d
	}
	d := fresh()
	d.Salt = events.DeriveSalt([]byte("another secret, 16+ bytes"), d.ID)
	if _, err := events.Sign(d, v.Key); err == nil || !strings.Contains(err.Error(), "call Seal") {
		t.Errorf("Sign with a salt not derived from the key: %v", err)
	}
	d = fresh()
	d.Discloser = "gemeente-amersfoort"
	d.Recipients = []string{"swv-de-eem"}
	if _, err := events.Sign(d, v.Key); err == nil || !strings.Contains(err.Error(), "is not the key's party") {
		t.Errorf("Sign for another party: %v", err)
	}
	d = fresh()
	d.Channel = ""
	var ves events.ValidationErrors
	if _, err := events.Sign(d, v.Key); !errors.As(err, &ves) || ves[0].Field != "channel" {
		t.Errorf("Sign of an invalid disclosure: %v", err)
	}
	d = fresh()
	d.CaseRef = strings.Repeat("x", 2000)
	d.Justification = strings.Repeat("ë", 1000)
	d.Consent = &events.Consent{Reference: strings.Repeat("y", 2000), GivenBy: events.ConsentParents}
	d.ProcessingActivity = strings.Repeat("z", 2000)
	d.Categories = nil
	for i := range 30 {
		d.Categories = append(d.Categories, fmt.Sprintf("%s-%02d", strings.Repeat("c", 60), i))
	}
	d.Recipients = nil
	for i := range 50 {
		d.Recipients = append(d.Recipients, fmt.Sprintf("%s-%02d", strings.Repeat("r", 60), i))
	}
	if env, err := events.Sign(d, v.Key); err != nil {
		// Valid but large: either it fits, or Sign says why not.
		if !strings.Contains(err.Error(), "the limit is 65536") {
			t.Errorf("Sign of a large disclosure: %v", err)
		}
	} else if len(env) > events.MaxEnvelopeSize {
		t.Errorf("Sign returned %d bytes, over the limit", len(env))
	}
}

// FuzzOpen feeds arbitrary bytes to Open. Properties: it never panics;
// every error is a *RejectError with a known reason; whatever ParseEnvelope
// accepts re-encodes to exactly the input; whatever Open accepts has a payload
// that re-encodes to exactly the signed bytes.
func FuzzOpen(f *testing.F) {
	for _, name := range vectorNames(f) {
		f.Add(computeVector(f, name).Envelope)
	}
	for _, c := range rejectCases(f) {
		f.Add(c.input)
	}
	keys := goldenResolver(f)
	known := map[events.Reason]bool{
		events.ReasonMalformed: true, events.ReasonNonCanonical: true, events.ReasonTooLarge: true,
		events.ReasonInvalid: true, events.ReasonUnknownParty: true, events.ReasonBadSignature: true,
		events.ReasonKeyNotInForce: true, events.ReasonKeyRevoked: true, events.ReasonWrongOrigin: true,
	}
	golden := computeVector(f, "basic").Envelope
	f.Fuzz(func(t *testing.T, b []byte) {
		d, env, err := events.Open(b, goldenOrigin, keys)
		// In a batch (with good envelopes around it, so the batch path
		// runs) it fares exactly as alone.
		many := events.OpenMany([][]byte{golden, b, golden, golden, golden}, goldenOrigin, keys)
		if (many[1].Err == nil) != (err == nil) || err != nil && many[1].Err.Error() != err.Error() {
			t.Fatalf("OpenMany says %v, Open says %v", many[1].Err, err)
		}
		for _, i := range []int{0, 2, 3, 4} {
			if many[i].Err != nil {
				t.Fatalf("the golden envelope beside it was refused: %v", many[i].Err)
			}
		}
		if err != nil {
			var re *events.RejectError
			if !errors.As(err, &re) || !known[re.Reason] {
				t.Fatalf("Open error %v (%T) is not a *RejectError with a known reason", err, err)
			}
		} else {
			if !bytes.Equal(env.Raw, b) {
				t.Fatal("Open accepted it but Raw is not the input")
			}
			canon, merr := d.MarshalCanonical()
			if merr != nil || !bytes.Equal(canon, env.Payload) {
				t.Fatalf("accepted payload re-encodes differently (%v)", merr)
			}
		}
		parsed, perr := events.ParseEnvelope(b)
		if perr != nil {
			return
		}
		if again := encodeEnvelopeForTest(parsed.PayloadType, parsed.Payload, parsed.KeyID, parsed.Sig); !bytes.Equal(again, b) {
			t.Fatalf("ParseEnvelope accepted bytes that re-encode differently: %s", firstDifference(again, b))
		}
	})
}

const (
	docPath       = "../docs/wire-format.md"
	docBeginFull  = "<!-- BEGIN GENERATED: worked example from events/testdata/envelope/full -->\n"
	docEndFull    = "<!-- END GENERATED -->\n"
	docRegenerate = "go test ./events -run TestWireFormatDoc -update"
)

// renderWorkedExample writes the worked example of docs/wire-format.md from
// a golden vector, so the document shows the bytes the tests check.
func renderWorkedExample(tb testing.TB, v *goldenVector) string {
	tb.Helper()
	kat, subjectKeys := loadKAT(tb)
	s := v.Disclosure.Subject
	var number string
	for _, kv := range kat.Vectors {
		if kv.KeyID == s.KeyID && kv.IDType == s.IDType && kv.Pseudonym == s.Pseudonym {
			number = kv.Number
		}
	}
	if number == "" {
		tb.Fatalf("vector %s: subject not in the known-answer file", v.Name)
	}
	saltMAC := hmac.New(sha256.New, v.Key.SaltSecret)
	saltMAC.Write([]byte("spoor/salt/v1\x00" + v.Disclosure.ID))
	saltFull := saltMAC.Sum(nil)
	pseudoInput := "spoor/subject/v1\x00" + string(s.IDType) + "\x00" + number
	prefix := strings.TrimSuffix(string(v.PAE), string(v.Payload))
	sum := sha256.Sum256(v.Envelope)
	var indented bytes.Buffer
	if err := json.Indent(&indented, v.Payload, "", "  "); err != nil {
		tb.Fatal(err)
	}
	var nonASCII []string
	seen := map[rune]bool{}
	for _, r := range string(v.Payload) {
		if r >= 0x80 && !seen[r] {
			seen[r] = true
			nonASCII = append(nonASCII, fmt.Sprintf("%c = % X", r, []byte(string(r))))
		}
	}

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!-- Generated by TestWireFormatDoc from the golden vector; do not edit by hand. Refresh with: %s -->\n\n", docRegenerate)
	p("Keys and secrets of the example (test values, published on purpose):\n\n")
	p("| what | value |\n|---|---|\n")
	p("| discloser (party id) | `%s` |\n", v.Key.Party)
	p("| Ed25519 seed (RFC 8032 private key), hex | `%x` |\n", v.Key.Private.Seed())
	p("| Ed25519 public key, hex | `%x` |\n", []byte(v.Key.Public()))
	p("| keyid = hex(SHA-256(public key)) | `%s` |\n", v.Expected.KeyID)
	p("| salt secret, hex | `%x` |\n", v.Key.SaltSecret)
	p("| pseudonym key `%s` (K_v), hex | `%x` |\n\n", s.KeyID, subjectKeys[s.KeyID].Secret)

	label := map[events.IDType]string{events.IDTypeBSN: "BSN", events.IDTypeOnderwijsnummer: "onderwijsnummer"}[s.IDType]
	p("**Pseudonym.** The subject is the synthetic %s `%s` (a test number, no person's). ", label, number)
	p("The HMAC input is the %d bytes `spoor/subject/v1` 00 `%s` 00 `%s`, in hex:\n\n```\n%x\n```\n\n", len(pseudoInput), s.IDType, number, pseudoInput)
	p("and HMAC-SHA256 under K_v gives the pseudonym `%s`.\n\n", s.Pseudonym)

	p("**Salt.** HMAC-SHA256(salt secret, `spoor/salt/v1` 00 `%s`) = `%x`; ", v.Disclosure.ID, saltFull)
	p("its first 16 bytes `%x` in base64 are the salt `%s`.\n\n", saltFull[:16], v.Disclosure.Salt)

	p("**Payload**, %d bytes of UTF-8 (non-ASCII characters: %s; the `\\n` in the justification is the two characters `\\` and `n`, the JSON escape of a line feed):\n\n", len(v.Payload), strings.Join(nonASCII, ", "))
	p("```json\n%s\n```\n\n", v.Payload)
	p("The same payload indented for reading (this is *not* the canonical form, and does not verify):\n\n")
	p("```json\n%s\n```\n\n", indented.Bytes())

	p("**PAE**, %d bytes: the %d ASCII bytes `%s` (ending in a space) followed by the %d payload bytes. ", len(v.PAE), len(prefix), prefix, len(v.Payload))
	p("Its SHA-256 is `%x`.\n\n", sha256.Sum256(v.PAE))

	p("**Signature**, Ed25519 over the PAE, 64 bytes, hex:\n\n```\n%x\n```\n\nin standard base64: `%s`.\n\n", v.Sig, v.Expected.Sig)

	p("**Envelope**, %d bytes (no trailing newline):\n\n", len(v.Envelope))
	p("```json\n%s\n```\n\n", v.Envelope)
	p("| what | value |\n|---|---|\n")
	p("| SHA-256 of the envelope | `%x` |\n", sum)
	p("| NATS subject | `%s` |\n", v.Expected.NATSSubject)
	p("| `Nats-Msg-Id` | `%s` |\n", v.Expected.NATSMsgID)
	return b.String()
}

// TestWireFormatDoc keeps the worked example in docs/wire-format.md equal to
// the golden vector, and checks that the prose names every payload field.
func TestWireFormatDoc(t *testing.T) {
	v := computeVector(t, "full")
	section := renderWorkedExample(t, v)
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i := strings.Index(text, docBeginFull)
	j := strings.Index(text, docEndFull)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", docPath, docBeginFull, docEndFull)
	}
	start := i + len(docBeginFull)
	if updateGolden() {
		text = text[:start] + section + text[j:]
		if err := os.WriteFile(docPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if got := text[start:j]; got != section {
		t.Errorf("the worked example in %s is out of date (%s); run: %s", docPath, firstDifference([]byte(got), []byte(section)), docRegenerate)
	}
	for _, must := range []string{
		string(v.Payload), string(v.Envelope), v.Expected.KeyID, v.Expected.NATSMsgID,
		events.PayloadType, events.SchemaV1, "spoor/salt/v1", "spoor/subject/v1", "spoor.disclosures.<party>",
		"Nats-Msg-Id", fmt.Sprint(events.MaxEnvelopeSize),
	} {
		if !strings.Contains(text, must) {
			t.Errorf("%s does not contain %.80q", docPath, must)
		}
	}
	// Every field of the payload, nested ones as parent.child.
	var fields []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, val := range m {
			fields = append(fields, prefix+k)
			if sub, ok := val.(map[string]any); ok {
				walk(prefix+k+".", sub)
			}
		}
	}
	var m map[string]any
	if err := json.Unmarshal(v.Payload, &m); err != nil {
		t.Fatal(err)
	}
	walk("", m)
	for _, f := range fields {
		if !strings.Contains(text, "`"+f+"`") {
			t.Errorf("%s does not describe the payload field `%s`", docPath, f)
		}
	}
	for _, r := range []events.Reason{events.ReasonMalformed, events.ReasonNonCanonical, events.ReasonTooLarge,
		events.ReasonInvalid, events.ReasonUnknownParty, events.ReasonBadSignature, events.ReasonKeyNotInForce,
		events.ReasonKeyRevoked, events.ReasonWrongOrigin, events.ReasonWrongSubject, events.ReasonIDConflict,
		events.ReasonOccurredInFuture} {
		if !strings.Contains(text, "`"+string(r)+"`") {
			t.Errorf("%s does not list the reason `%s`", docPath, r)
		}
	}
}
