package ingest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/gateway"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/ingest"
	"github.com/spoor-ledger/spoor/ledger/memstore"
	"github.com/spoor-ledger/spoor/verifier"
)

var updateDoc = flag.Bool("update-doc", false, "rewrite the demo covenant's worked example in docs/wire-format.md")

// The published keys of the worked example on the demo covenant. The demo
// covenant's own keys are made fresh on every machine (events/demo), so
// the example fills the same template with these instead: the log's and
// the administrator's keys made once with verifier.GenerateLogKeys and
// events.GenerateAdminKey, and every party's key and salt secret and the
// pseudonym key derived from a seed text (exampleSeed).
const (
	exampleLogSkey   = "PRIVATE+KEY+spoor.example/regio-amersfoort+2f113df3+Aar/8jQhtgUj9OJHKES3iAaHRyPLaHnk30u/79H3n35q"
	exampleLogVkey   = "spoor.example/regio-amersfoort+2f113df3+AYbGerv1Wcsa/yQEaHtWtLxM9F9VTrx8IUZNIft7ve6x"
	exampleCosSkey   = "PRIVATE+KEY+spoor.example/regio-amersfoort/cosigner+0de52b7f+BLgrT/HaAod79C0th5w52kfKULMu1yi500kgmXjnjt/z"
	exampleCosVkey   = "spoor.example/regio-amersfoort/cosigner+0de52b7f+BO/Tr6GI6gKJCJFmJlK2JhwYj4xbgfPtXPe34iYHUbIt"
	exampleAdminSkey = "PRIVATE+KEY+regio-amersfoort.convenantbeheer.demo+5bd6a8eb+AWo/DexZyLEoM3/JMZA5KHsUbU45yjMU5ehx/cnFFb0m"
	exampleAdminVkey = "regio-amersfoort.convenantbeheer.demo+5bd6a8eb+AZskCyoCkwh9CTHgBtmR1QlKjXn16233YVxaAsRMMGed"

	exampleParty    = "gemeente-amersfoort"
	exampleIdemKey  = "leerplicht-2026-0001"
	exampleBSN      = "999990019"
	exampleToken    = "token-of-the-leerplicht-system"
	exampleDocPath  = "../../docs/wire-format.md"
	exampleDocBegin = "<!-- BEGIN GENERATED: worked example on the demo covenant -->\n"
	exampleDocEnd   = "<!-- END GENERATED: worked example on the demo covenant -->"
)

// exampleInput is the body a leerplicht system POSTs to the gateway.
const exampleInput = `{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","processing_activity":"leerplicht-verzuimmelding","occurred_at":"2026-01-15T09:00:00Z","recipients":["swv-de-eem"],"subject":{"id_type":"bsn","number":"999990019"},"subject_age_band":"12-15","categories":["identificatie","onderwijsgegevens"],"purpose":"verzuim-en-leerplicht","legal_basis":{"ground":"c","statute":"leerplichtwet-21"},"justification":"Verzuim boven de wettelijke grens gemeld","channel":"system","actor":{"role":"leerplichtambtenaar","staff_id":"lpa-0042"}}`

// exampleSeed is the 32 bytes derived from what: SHA-256 of
// "spoor/wire-example/v1/" and what.
func exampleSeed(what string) []byte {
	h := sha256.Sum256([]byte("spoor/wire-example/v1/" + what))
	return h[:]
}

func examplePartyKey(party string) *events.PartyKey {
	return &events.PartyKey{Party: party, Private: ed25519.NewKeyFromSeed(exampleSeed("key/" + party)), SaltSecret: exampleSeed("salt/" + party)}
}

// workedExample is every value of the example, computed by the code the
// gateway, the ledger and ingest run.
type workedExample struct {
	signed   *events.SignedCovenant
	key      *events.PartyKey
	subject  events.SubjectKey
	id       string
	idMAC    []byte
	d        *events.Disclosure
	payload  []byte
	env      []byte
	hash     [32]byte
	findings []events.Finding
	receipt  *natsbus.Receipt
	answer   []byte
	request  []byte
	keys     *verifier.LogKeys
}

func buildWorkedExample(t *testing.T) *workedExample {
	t.Helper()
	w := &workedExample{key: examplePartyKey(exampleParty), subject: events.SubjectKey{ID: demo.SubjectKeyID, Secret: exampleSeed("subject/k1")}}
	yml, err := demo.Fill("amersfoort", exampleAdminVkey, func(p string) (*events.PartyKey, error) { return examplePartyKey(p), nil })
	if err != nil {
		t.Fatal(err)
	}
	signed, err := events.SignCovenant(yml, exampleAdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	if w.signed, err = events.ParseSignedCovenant(signed); err != nil {
		t.Fatal(err)
	}
	cov := w.signed.Covenant

	// What the gateway does with the POST.
	in, err := gateway.ParseInput(1, []byte(exampleInput))
	if err != nil {
		t.Fatal(err)
	}
	w.id = events.KeyedEventID(w.key.SaltSecret, exampleParty, exampleIdemKey)
	m := hmac.New(sha256.New, w.key.SaltSecret)
	m.Write([]byte("spoor/keyed-id/v1\x00" + exampleParty + "\x00" + exampleIdemKey))
	w.idMAC = m.Sum(nil)
	d, fes := in.Disclosure(1, exampleParty, cov.Origin, w.id, w.subject)
	if len(fes) > 0 {
		t.Fatalf("the example input is refused: %v", fes[0])
	}
	events.Seal(d, w.key)
	if w.env, err = events.Sign(d, w.key); err != nil {
		t.Fatal(err)
	}
	w.d = d
	w.hash = sha256.Sum256(w.env)
	e, err := events.ParseEnvelope(w.env)
	if err != nil {
		t.Fatal(err)
	}
	w.payload = e.Payload
	w.findings = cov.Check(d)

	at := time.Date(2026, 1, 15, 9, 0, 2, 500e6, time.UTC)
	// The ledger logs it at a fixed time, and answers the receipt as
	// ingest does on spoor.receipts.<party>.
	signer := newFixedTimeSigner(t, at)
	if w.keys, err = verifier.ParseLogKeys(exampleLogVkey, exampleCosVkey); err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	l, err := ledger.Open(context.Background(), ledger.Config{Store: store, Signer: signer, Keys: w.keys, Covenant: w.signed,
		AdminVkey: exampleAdminVkey, IdleCosign: -1, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	opened, _, err := events.Open(w.env, cov.Origin, cov)
	if err != nil {
		t.Fatalf("the example's envelope does not open under the demo covenant: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := l.Submit(ctx, []ledger.Submission{{Envelope: w.env, Disclosure: opened, Findings: w.findings}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	req := natsbus.ReceiptRequest{EventID: w.id, SHA256: hex.EncodeToString(w.hash[:])}
	if w.request, err = json.Marshal(req); err != nil {
		t.Fatal(err)
	}
	if w.receipt, err = ingest.Receipt(ctx, l, exampleParty, w.id, w.hash); err != nil {
		t.Fatal(err)
	}
	if w.answer, err = json.Marshal(w.receipt); err != nil {
		t.Fatal(err)
	}
	return w
}

// fixedTimeSigner signs checkpoints as verifier.CheckpointSigner does, but
// with the cosignature's timestamp at a fixed time instead of the clock's,
// so that the example's checkpoint is the same bytes on every run; the test
// checks the result with the verifier, so a wrong cosignature fails it.
type fixedTimeSigner struct {
	log note.Signer
	cos *fixedCosigner
}

type fixedCosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	at   uint64
}

func (c *fixedCosigner) Name() string    { return c.name }
func (c *fixedCosigner) KeyHash() uint32 { return c.hash }

// Sign is c2sp.org/tlog-cosignature's Ed25519 cosignature/v1: the
// timestamp, then the signature over "cosignature/v1", the time and the
// note's text.
func (c *fixedCosigner) Sign(msg []byte) ([]byte, error) {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", c.at, msg)
	return append(binary.BigEndian.AppendUint64(nil, c.at), ed25519.Sign(c.key, m)...), nil
}

func newFixedTimeSigner(t *testing.T, at time.Time) *fixedTimeSigner {
	t.Helper()
	logS, err := note.NewSigner(exampleLogSkey)
	if err != nil {
		t.Fatal(err)
	}
	real, err := fnote.NewSignerForCosignatureV1(exampleCosSkey)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(exampleCosSkey, "+")
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		t.Fatalf("the example cosigner key: %v", err)
	}
	return &fixedTimeSigner{log: logS, cos: &fixedCosigner{name: real.Name(), hash: real.KeyHash(),
		key: ed25519.NewKeyFromSeed(raw[1:]), at: uint64(at.Unix())}}
}

func (s *fixedTimeSigner) Sign(origin string, size uint64, root [32]byte) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(verifier.FormatCheckpoint(origin, size, root))}, s.log, s.cos)
}

// render writes the generated part of the worked example.
func (w *workedExample) render(t *testing.T) string {
	t.Helper()
	cov := w.signed.Covenant
	party, _ := cov.Party(exampleParty)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!-- Generated by TestWireFormatDemoExample from the demo covenant's template and the published keys in\n")
	p("     ledger/ingest/wireformat_doc_test.go; do not edit by hand. Refresh with: go test ./ledger/ingest -run TestWireFormatDemoExample -update-doc -->\n\n")
	p("| what | value |\n|---|---|\n")
	p("| log origin (the covenant's `origin`) | `%s` |\n", cov.Origin)
	p("| covenant version 1, SHA-256 of the signed file | `%s` |\n", w.signed.Hash())
	p("| administrator's verifier key (pin it) | `%s` |\n", exampleAdminVkey)
	p("| log's verifier key | `%s` |\n", exampleLogVkey)
	p("| log's cosigner key | `%s` |\n", exampleCosVkey)
	p("| discloser (party id) and its OIN | `%s`, `%s` |\n", party.ID, party.OIN)
	p("| its Ed25519 seed, hex | `%s` |\n", hex.EncodeToString(w.key.Private.Seed()))
	p("| its keyid = hex(SHA-256(public key)) | `%s` |\n", w.key.KeyID())
	p("| its salt secret, hex | `%s` |\n", hex.EncodeToString(w.key.SaltSecret))
	p("| pseudonym key `%s` (K_v), hex | `%s` |\n\n", w.subject.ID, hex.EncodeToString(w.subject.Secret))

	p("**1. The request.** The municipality's leerplicht system sends the disclosure to `spoor gateway` with the child's BSN\n")
	p("`%s` (a test number, no person's):\n\n", exampleBSN)
	p("```\nPOST /v1/disclosures HTTP/1.1\nAuthorization: Bearer %s\nIdempotency-Key: %s\nContent-Type: application/json\n\n%s\n```\n\n", exampleToken, exampleIdemKey, exampleInput)

	p("**2. The event id** comes from the Idempotency-Key: HMAC-SHA256(salt secret, `spoor/keyed-id/v1` 00 `%s` 00 `%s`) =\n", exampleParty, exampleIdemKey)
	p("`%s`; its first 16 bytes with the UUID version (7) and variant bits set are the id `%s`.\n\n", hex.EncodeToString(w.idMAC), w.id)

	pin := append(append([]byte("spoor/subject/v1\x00"), "bsn\x00"...), exampleBSN...)
	p("**3. The pseudonym.** HMAC-SHA256(K_v, `%s`) over the %d bytes `spoor/subject/v1` 00 `bsn` 00 `%s` is\n", hex.EncodeToString(pin), len(pin), exampleBSN)
	p("`%s`; the number goes no further than the gateway.\n\n", w.d.Subject.Pseudonym)

	m := hmac.New(sha256.New, w.key.SaltSecret)
	m.Write([]byte("spoor/salt/v1\x00" + w.id))
	p("**4. The salt.** HMAC-SHA256(salt secret, `spoor/salt/v1` 00 `%s`) = `%s`; its first 16 bytes in base64: `%s`.\n\n",
		w.id, hex.EncodeToString(m.Sum(nil)), w.d.Salt)

	p("**5. The payload**, %d bytes, canonical:\n\n```json\n%s\n```\n\n", len(w.payload), w.payload)
	p("**6. The envelope**, %d bytes, signed by the party's key (the gateway signs: the organisation, not the operator):\n\n```json\n%s\n```\n\n", len(w.env), w.env)
	p("SHA-256 of the envelope: `%s`.\n\n", hex.EncodeToString(w.hash[:]))

	p("**7. Publishing.** The envelope is the body of a JetStream message on `%s` with the header\n", natsbus.DisclosureSubject(exampleParty))
	p("`Nats-Msg-Id: %s`.\n\n", natsbus.MsgID(w.id, w.env))

	p("**8. The inbox rule.** The party's NATS user may publish only on its own subjects and may subscribe only to\n")
	p("`%s.>`: connect with that inbox prefix (nats.go `nats.CustomInboxPrefix(%q)`, or the\n", natsbus.InboxPrefix(exampleParty), natsbus.InboxPrefix(exampleParty))
	p("`inbox_prefix` option of another client), so that the publish acknowledgement and the receipt's answer come on a reply\n")
	p("subject such as `%s.<random>` that the party alone may read. With the default prefix `_INBOX.` the server refuses the\n", natsbus.InboxPrefix(exampleParty))
	p("subscription and every request times out.\n\n")

	p("**9. The receipt.** A NATS request on `%s` with the body\n\n```json\n%s\n```\n\n", natsbus.ReceiptSubject(exampleParty), w.request)
	p("is answered, once the ledger has durably logged the event, with\n\n```json\n%s\n```\n\n", w.answer)
	rec, err := verifier.ParseLeafRecord(w.receipt.LeafRecord)
	if err != nil {
		t.Fatal(err)
	}
	lh := verifier.LeafHash(w.receipt.LeafRecord)
	p("Check it before relying on it: `leaf_record` (%d bytes, hex `%s`) names entry type %d, the body hash\n",
		len(w.receipt.LeafRecord), hex.EncodeToString(w.receipt.LeafRecord), rec.Type)
	p("`%s` (the envelope's SHA-256), `integrated_at` %s and the covenant at leaf %d; the leaf hash is\n",
		hex.EncodeToString(rec.BodyHash[:]), rec.IntegratedAt.UTC().Format(time.RFC3339Nano), rec.CovenantIndex)
	p("SHA-256(00 || leaf record) = `%s`; the inclusion proof (%d hashes) from it for leaf %d of %d gives the root hash on the\n",
		hex.EncodeToString(lh[:]), len(w.receipt.InclusionProof), w.receipt.LeafIndex, w.receipt.TreeSize)
	p("checkpoint's third line, and the checkpoint's signatures verify under the log's verifier and cosigner keys above.\n")
	if len(w.findings) == 0 {
		p("The covenant finds nothing in this disclosure: the gateway's answer (the receipt with the envelope) has no `findings`.\n")
	} else {
		p("The covenant's findings, which the gateway's answer lists:")
		for _, f := range w.findings {
			p(" `%s` (`%s`)", f.Rule, f.Field)
		}
		p(".\n")
	}
	return b.String()
}

// TestWireFormatDemoExample recomputes the worked example on the demo
// covenant (the gateway's parsing, keyed id, pseudonym and signature; the
// ledger's log entry; ingest's receipt) and holds docs/wire-format.md to
// it byte for byte. It also checks the example as a client would: the
// envelope opens under the demo covenant with the published keys, the
// receipt's checkpoint verifies under the published log keys, its leaf
// record names the envelope's hash, and the proof leads to the root.
func TestWireFormatDemoExample(t *testing.T) {
	w := buildWorkedExample(t)
	section := w.render(t)

	cov := w.signed.Covenant
	if cov.Origin != "spoor.example/regio-amersfoort" || !strings.Contains(string(w.signed.Envelope.Payload), "Gemeente Amersfoort") {
		t.Fatalf("the example is not on the demo covenant of regio Amersfoort: origin %s", cov.Origin)
	}
	if want, err := events.Pseudonym(w.subject, events.IDTypeBSN, exampleBSN); err != nil || w.d.Subject.Pseudonym != want {
		t.Fatalf("pseudonym %s, want %s (%v)", w.d.Subject.Pseudonym, want, err)
	}
	if w.receipt.Status != natsbus.ReceiptCommitted || w.receipt.LeafIndex != 1 {
		t.Fatalf("the receipt is %s at leaf %d, want committed at leaf 1", w.receipt.Status, w.receipt.LeafIndex)
	}
	cp, err := verifier.OpenCheckpoint(w.receipt.Checkpoint, w.keys)
	if err != nil {
		t.Fatalf("the receipt's checkpoint: %v", err)
	}
	rec, err := verifier.ParseLeafRecord(w.receipt.LeafRecord)
	if err != nil || rec.BodyHash != w.hash {
		t.Fatalf("the leaf record does not name the envelope (%v)", err)
	}
	if err := verifier.VerifyInclusion(w.receipt.LeafIndex, cp.Size, verifier.LeafHash(w.receipt.LeafRecord), w.receipt.InclusionProof, cp.Hash); err != nil {
		t.Fatalf("the inclusion proof: %v", err)
	}
	if strings.Contains(string(w.env), exampleBSN) || strings.Contains(string(w.answer), exampleBSN) {
		t.Fatal("the number is in the envelope or the receipt")
	}
	// The request and the answer are the formats the bus's parsers read.
	if _, err := natsbus.ParseReceiptRequest(w.request); err != nil {
		t.Fatalf("the receipt request: %v", err)
	}

	doc, err := os.ReadFile(exampleDocPath)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(exampleDocBegin)), bytes.Index(doc, []byte(exampleDocEnd))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", exampleDocPath, exampleDocBegin, exampleDocEnd)
	}
	start := i + len(exampleDocBegin)
	if *updateDoc {
		out := append(append(append([]byte{}, doc[:start]...), section...), doc[j:]...)
		if err := os.WriteFile(exampleDocPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := string(doc[start:j]); got != section {
		gl, wl := strings.Split(got, "\n"), strings.Split(section, "\n")
		for k := range min(len(gl), len(wl)) {
			if gl[k] != wl[k] {
				t.Fatalf("the worked example in %s is out of date at its line %d:\n got: %.200s\nwant: %.200s\nrun: go test ./ledger/ingest -run TestWireFormatDemoExample -update-doc", exampleDocPath, k+1, gl[k], wl[k])
			}
		}
		t.Fatalf("the worked example in %s is out of date (%d lines, want %d); run: go test ./ledger/ingest -run TestWireFormatDemoExample -update-doc", exampleDocPath, len(gl), len(wl))
	}
}
