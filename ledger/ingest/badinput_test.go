package ingest_test

// The bad-input table of issue 8: every kind of wrong input a sender can
// produce, over NATS and over HTTP, each checked where that sender sees
// the answer:
//
//   - the publish call, for what a client refuses before anything reaches
//     the bus (an invalid BSN, an invalid disclosure, a non-canonical
//     envelope) and for what the bus refuses (too big, no such stream);
//   - the party's rejections stream (and its receipt and the public status
//     API), for what reaches the ledger and is refused there;
//   - the HTTP response, for bad parameters, bodies, tokens and roles.
//
// The bad envelopes share the bus, and batches, with good events: the good
// ones are all logged, each once, and nothing refused enters the log. No
// answer, whoever gets it, repeats a BSN or a pseudonym.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/ingest"
)

// badBSN is a synthetic BSN from the 9999 test range (it passes the
// elfproef). The table plants it in wrong places; no answer may repeat it.
const badBSN = "999990019"

// The same number as a person writes it, and an onderwijsnummer: no
// pattern catches them, so nothing the sender chose may come back at all.
const (
	dottedBSN       = "9999.90.019"
	onderwijsnummer = "100000004"
)

// busCase is an envelope published on the bus that the ledger must refuse.
type busCase struct {
	name    string
	subject string // the subject's last token: the party whose subject it is
	raw     string // a whole subject instead, when it names no party
	data    []byte
	msgID   string
	eventID string // "" when the envelope is too broken to name one
	reason  events.Reason
	// logged: the id is in the log (same id, other bytes): the first one
	// stands, and the status API says committed.
	logged bool
	// noConsumer: the subject's party has no rejections consumer (it is
	// not in the covenant), or the subject names no party at all.
	noConsumer bool
}

// wireEnv is the DSSE envelope as JSON, for building malformed variants.
type wireEnv struct {
	PayloadType string    `json:"payloadType"`
	Payload     string    `json:"payload"`
	Signatures  []wireSig `json:"signatures"`
}

type wireSig struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomMsgID is a Nats-Msg-Id of MsgID's form for an envelope that names
// no event, so that its rejection can still be found.
func randomMsgID() string {
	return natsbus.MsgID(uuid.Must(uuid.NewV7()).String(), []byte(uuid.NewString()))
}

// fresh returns a new synthetic disclosure, sealed by its discloser, and
// its envelope.
func (h *harness) fresh() (*events.Disclosure, []byte) {
	ev := h.events(1)[0]
	return ev.d, ev.env
}

// payloadOf returns the canonical payload of d.
func payloadOf(t *testing.T, d *events.Disclosure) []byte {
	t.Helper()
	p, err := d.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withField replaces the JSON value of a top-level field of a canonical
// payload, keeping everything else byte for byte.
func withField(t *testing.T, payload []byte, field, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	old, ok := m[field]
	if !ok {
		t.Fatalf("payload has no field %s", field)
	}
	needle := append([]byte(`"`+field+`":`), old...)
	if bytes.Count(payload, needle) != 1 {
		t.Fatalf("field %s is not unique in the payload", field)
	}
	return bytes.Replace(payload, needle, []byte(`"`+field+`":`+value), 1)
}

// busCases builds the envelopes the ledger must refuse. logged is an event
// already in the log.
// loggedIndex is the leaf of a logged event.
func loggedIndex(t *testing.T, h *harness, ev sent) uint64 {
	t.Helper()
	idx, err := h.l.LookupEvent(context.Background(), ev.d.Discloser, ev.d.ID)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func (h *harness) busCases(logged sent) []busCase {
	t := h.t
	t.Helper()
	key := func(party string) *events.PartyKey { return h.env.Demo.Parties[party] }
	var cs []busCase
	add := func(c busCase) {
		if c.msgID == "" {
			if c.eventID != "" {
				c.msgID = natsbus.MsgID(c.eventID, c.data)
			} else {
				c.msgID = randomMsgID()
			}
		}
		cs = append(cs, c)
	}
	// signed wraps any payload in a canonical envelope signed by party.
	signed := func(payload []byte, party string) []byte {
		return events.SignEnvelope(events.PayloadType, payload, key(party).Private)
	}
	// The envelope of a fresh event, as JSON to take apart.
	parts := func() (*events.Disclosure, wireEnv) {
		d, env := h.fresh()
		var w wireEnv
		if err := json.Unmarshal(env, &w); err != nil {
			t.Fatal(err)
		}
		return d, w
	}
	p0 := h.parties[0]

	// Not an envelope at all.
	add(busCase{name: "truncated JSON", subject: p0, reason: events.ReasonMalformed,
		data: []byte(`{"payloadType":"application/vnd.spoor.disclosure.v1+json","payload":`)})
	add(busCase{name: "binary garbage", subject: p0, reason: events.ReasonMalformed, data: []byte{0xff, 0x00, 0xfe, 'x'}})
	add(busCase{name: "empty message", subject: p0, reason: events.ReasonMalformed, data: []byte{}})
	add(busCase{name: "JSON array", subject: p0, reason: events.ReasonMalformed, data: []byte(`[1,2,3]`)})

	// Envelopes that are not the one canonical form.
	d, w := parts()
	add(busCase{name: "unknown envelope field", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed,
		data: append(bytes.TrimSuffix(mustJSON(t, w), []byte("}")), []byte(`,"extra":1}`)...)})
	d, env := h.fresh()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, env, "", "  "); err != nil {
		t.Fatal(err)
	}
	add(busCase{name: "pretty-printed envelope", subject: d.Discloser, eventID: d.ID, reason: events.ReasonNonCanonical, data: pretty.Bytes()})
	d, w = parts()
	reordered := mustJSON(t, struct {
		Signatures  []wireSig `json:"signatures"`
		Payload     string    `json:"payload"`
		PayloadType string    `json:"payloadType"`
	}{w.Signatures, w.Payload, w.PayloadType})
	add(busCase{name: "fields in another order", subject: d.Discloser, eventID: d.ID, reason: events.ReasonNonCanonical, data: reordered})
	d, w = parts()
	w.Payload = w.Payload[:12] + "\n" + w.Payload[12:]
	add(busCase{name: "line break in the base64", subject: d.Discloser, eventID: d.ID, reason: events.ReasonNonCanonical, data: mustJSON(t, w)})
	d, w = parts()
	w.Signatures = append(w.Signatures, w.Signatures[0])
	add(busCase{name: "two signatures", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed, data: mustJSON(t, w)})
	d, w = parts()
	w.Signatures = nil
	add(busCase{name: "no signature", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed, data: mustJSON(t, w)})
	d, w = parts()
	w.Signatures[0].Sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
	add(busCase{name: "short signature", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed, data: mustJSON(t, w)})
	d, _ = h.fresh()
	add(busCase{name: "other payloadType", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed,
		data: events.SignEnvelope("application/json", payloadOf(t, d), key(d.Discloser).Private)})

	// Properly signed, but the payload is not a valid disclosure.
	d, _ = h.fresh()
	spaced := bytes.Replace(payloadOf(t, d), []byte(`":`), []byte(`": `), 1)
	add(busCase{name: "payload not canonical", subject: d.Discloser, eventID: d.ID, reason: events.ReasonNonCanonical, data: signed(spaced, d.Discloser)})
	d, _ = h.fresh()
	add(busCase{name: "wrong type", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed,
		data: signed(withField(t, payloadOf(t, d), "recipients", `"swv-de-eem"`), d.Discloser)})
	d, _ = h.fresh()
	add(busCase{name: "a BSN as a number", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed,
		data: signed(withField(t, payloadOf(t, d), "trace_id", badBSN), d.Discloser)})
	d, _ = h.fresh()
	add(busCase{name: "payload of another kind", subject: d.Discloser, reason: events.ReasonMalformed,
		data: signed([]byte(`{"hello":"world"}`), d.Discloser)})
	d, _ = h.fresh()
	d.TraceID = strings.Repeat("0", 32)
	add(busCase{name: "all-zero trace id", subject: d.Discloser, eventID: d.ID, reason: events.ReasonInvalid, data: signed(payloadOf(t, d), d.Discloser)})
	d, _ = h.fresh()
	d.Subject.Pseudonym = badBSN
	add(busCase{name: "a BSN for the pseudonym", subject: d.Discloser, eventID: d.ID, reason: events.ReasonInvalid, data: signed(payloadOf(t, d), d.Discloser)})
	d, _ = h.fresh()
	d.Justification = strings.Repeat("x", 2001)
	add(busCase{name: "huge field", subject: d.Discloser, eventID: d.ID, reason: events.ReasonInvalid, data: signed(payloadOf(t, d), d.Discloser)})
	d, _ = h.fresh()
	d.Justification = strings.Repeat("lang verhaal ", 4000) // well over 64 KiB in the envelope (whatever the other fields), under the bus's limit
	add(busCase{name: "envelope over 64 KiB", subject: d.Discloser, eventID: d.ID, reason: events.ReasonTooLarge, data: signed(payloadOf(t, d), d.Discloser)})
	d, _ = h.fresh()
	d.Recipients = []string{d.Discloser}
	add(busCase{name: "discloser as its own recipient", subject: d.Discloser, eventID: d.ID, reason: events.ReasonInvalid, data: signed(payloadOf(t, d), d.Discloser)})

	// Signatures that are not the discloser's key in force.
	d, env = h.fresh()
	e, err := events.ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := events.GeneratePartyKey(d.Discloser)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(events.SignEnvelope(events.PayloadType, e.Payload, impostor.Private), []byte(impostor.KeyID()), []byte(e.KeyID), 1)
	add(busCase{name: "forged signature", subject: d.Discloser, eventID: d.ID, reason: events.ReasonBadSignature, data: forged})
	d, w = parts()
	od := *d
	od.ID = uuid.Must(uuid.NewV7()).String()
	var ow wireEnv
	if err := json.Unmarshal(h.env.Sign(t, &od), &ow); err != nil {
		t.Fatal(err)
	}
	w.Signatures = ow.Signatures // the party's own signature, of another payload
	add(busCase{name: "signature of another payload", subject: d.Discloser, eventID: d.ID, reason: events.ReasonBadSignature, data: mustJSON(t, w)})
	d, _ = h.fresh()
	otherParty := h.otherParty(d.Discloser)
	add(busCase{name: "valid signature by another party", subject: d.Discloser, eventID: d.ID, reason: events.ReasonKeyNotInForce,
		data: signed(payloadOf(t, d), otherParty)})
	d, w = parts()
	w.Signatures[0].KeyID = strings.Repeat("ab", 32)
	add(busCase{name: "keyid of no key", subject: d.Discloser, eventID: d.ID, reason: events.ReasonKeyNotInForce, data: mustJSON(t, w)})
	d, _ = h.fresh()
	d.OccurredAt = time.Date(2020, 1, 6, 9, 0, 0, 0, time.UTC) // before the demo keys' valid_from
	add(busCase{name: "key outside its validity", subject: d.Discloser, eventID: d.ID, reason: events.ReasonKeyNotInForce, data: h.env.Sign(t, d)})

	// Replays and misdirection.
	d2 := *logged.d
	d2.Justification += " (aangevuld)"
	conflict := h.env.Sign(t, &d2)
	add(busCase{name: "replayed id with other bytes", subject: d2.Discloser, eventID: d2.ID, reason: events.ReasonIDConflict, data: conflict, logged: true})
	d, _ = h.fresh()
	d.Origin = "spoor.example/waterweg"
	add(busCase{name: "another region's origin", subject: d.Discloser, eventID: d.ID, reason: events.ReasonWrongOrigin, data: h.env.Sign(t, d)})
	d, _ = h.fresh()
	d.Origin = badBSN
	add(busCase{name: "a BSN for the origin", subject: d.Discloser, eventID: d.ID, reason: events.ReasonWrongOrigin, data: h.env.Sign(t, d)})
	stranger, err := events.GeneratePartyKey("school-buiten-convenant")
	if err != nil {
		t.Fatal(err)
	}
	d, _ = h.fresh()
	d.ID = uuid.Must(uuid.NewV7()).String()
	events.Seal(d, stranger)
	strange, err := events.Sign(d, stranger)
	if err != nil {
		t.Fatal(err)
	}
	add(busCase{name: "unknown party", subject: stranger.Party, eventID: d.ID, reason: events.ReasonUnknownParty, data: strange, noConsumer: true})
	d, env = h.fresh()
	add(busCase{name: "on another party's subject", subject: h.otherParty(d.Discloser), eventID: d.ID, reason: events.ReasonWrongSubject, data: env})
	d, env = h.fresh()
	add(busCase{name: "on a subject naming no party", raw: natsbus.DisclosureSubject(d.Discloser) + ".extra", eventID: d.ID,
		reason: events.ReasonWrongSubject, data: env, noConsumer: true})

	// What the sender chose never comes back, redacted or not: a BSN for
	// the discloser, a dotted BSN in the payloadType and for the
	// discloser, an onderwijsnummer as the subject's party, a BSN as a
	// member name.
	d, _ = h.fresh()
	sender := d.Discloser
	d.Discloser = badBSN
	add(busCase{name: "a BSN for the discloser", subject: sender, eventID: d.ID, reason: events.ReasonUnknownParty,
		data: signed(payloadOf(t, d), sender)})
	d, _ = h.fresh()
	sender = d.Discloser
	d.Discloser = dottedBSN
	add(busCase{name: "a dotted BSN for the discloser", subject: sender, eventID: d.ID, reason: events.ReasonInvalid,
		data: signed(payloadOf(t, d), sender)})
	d, _ = h.fresh()
	add(busCase{name: "a dotted BSN for the payloadType", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed,
		data: events.SignEnvelope("application/"+dottedBSN, payloadOf(t, d), key(d.Discloser).Private)})
	d, env = h.fresh()
	add(busCase{name: "an onderwijsnummer for the subject's party", subject: onderwijsnummer, eventID: d.ID,
		reason: events.ReasonWrongSubject, data: env, noConsumer: true})
	d, _ = h.fresh()
	add(busCase{name: "a BSN for a member name", subject: d.Discloser, eventID: d.ID, reason: events.ReasonMalformed,
		data: signed(bytes.Replace(payloadOf(t, d), []byte(`"channel":`), []byte(`"bsn`+badBSN+`":"x","channel":`), 1), d.Discloser)})
	return cs
}

// forbidden collects the strings no answer may contain.
type forbidden []string

func (f forbidden) check(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range f {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s repeats personal data (%.12s...): %.300s", where, s, text)
		}
	}
}

func TestBadInputTable(t *testing.T) {
	srv := natstest.RunServer(t)
	// A longer linger makes the bad envelopes and the good events share
	// batches.
	h := newHarness(t, srv, ingest.Config{Linger: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	subjectKey := h.env.Demo.SubjectKey
	badPseudonym, err := events.Pseudonym(subjectKey, events.IDTypeBSN, badBSN)
	if err != nil {
		t.Fatal(err)
	}
	nogo := forbidden{badBSN, badPseudonym, dottedBSN, onderwijsnummer, "99999", "9999.90"}

	logged := h.events(1)[0]
	p := h.publisher(logged.d.Discloser)
	if _, err := p.Publish(ctx, logged.d); err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, h.env.Keys, waitReceipt(t, p, logged.d.ID, logged.env), logged.env)

	cases := h.busCases(logged)
	good := h.events(60)
	for _, ev := range append([]sent{logged}, good...) {
		nogo = append(nogo, ev.d.Subject.Pseudonym)
	}

	// The HTTP API on the same ledger, with a token of each role.
	partyA := logged.d.Discloser
	tokens := map[[32]byte]httpapi.Principal{
		httpapi.TokenHash("fg-token"):     {Role: httpapi.RoleFG, Name: "fg"},
		httpapi.TokenHash("desk-1-token"): {Role: httpapi.RoleDesk, Name: "desk-1"},
		httpapi.TokenHash("desk-2-token"): {Role: httpapi.RoleDesk, Name: "desk-2"},
		httpapi.TokenHash("party-token"):  {Role: httpapi.RoleParty, Name: "party-a", Party: partyA},
	}
	// The limit on access requests is raised here so that the table's many
	// requests pass it; "inzage: rate limited" checks it on its own server.
	api := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: h.l, Tokens: tokens, AccessLimit: 6000}))
	defer api.Close()
	limited := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: h.l, Tokens: tokens, AccessLimit: 6}))
	defer limited.Close()

	// Good and bad interleaved on the bus, asynchronously so that they
	// arrive together.
	publishRaw := func(subject string, data []byte, msgID string) {
		m := nats.NewMsg(subject)
		m.Data = data
		if msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		if _, err := h.js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range good {
		publishRaw(natsbus.DisclosureSubject(ev.d.Discloser), ev.env, natsbus.MsgID(ev.d.ID, ev.env))
		if i < len(cases) {
			c := cases[i]
			subject := c.raw
			if subject == "" {
				subject = natsbus.DisclosureSubject(c.subject)
			}
			publishRaw(subject, c.data, c.msgID)
		}
	}
	if len(cases) > len(good) {
		t.Fatalf("%d bad envelopes but only %d good events to interleave them with", len(cases), len(good))
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("no publish acks")
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)

	// The good events are logged, each once; nothing refused entered the
	// log.
	h.checkExactlyOnce(append([]sent{logged}, good...), 0)
	h.checkRootFromStore()

	var total int
	t.Run("rejections stream", func(t *testing.T) {
		want := map[string][]busCase{}
		for _, c := range cases {
			if !c.noConsumer {
				want[c.subject] = append(want[c.subject], c)
			}
		}
		got := map[string]*natsbus.Rejection{}
		for party, cs := range want {
			for _, r := range readRejections(t, h.js, party, len(cs)) {
				got[r.MsgID] = r
			}
		}
		for _, c := range cases {
			total++
			t.Run(c.name, func(t *testing.T) {
				switch {
				case c.raw != "":
					// No party to tell on the bus: the status API is where
					// the sender learns it (below).
					return
				case c.noConsumer:
					// A subject naming no party of the covenant: nothing
					// is published under the token the sender chose; the
					// status API has the record (below).
					noRejectionOn(t, h.js, c.subject)
					return
				}
				r := got[c.msgID]
				if r == nil {
					t.Fatalf("no rejection on %s", natsbus.RejectedSubject(c.subject))
				}
				if r.Reason != c.reason || r.Party != c.subject || r.EventID != c.eventID {
					t.Errorf("rejection %+v, want reason %s for party %s, event %q", r, c.reason, c.subject, c.eventID)
				}
				if r.Message == "" {
					t.Error("the rejection does not say what is wrong")
				}
				// One prefix: the reason is its own field (before the fix
				// "malformed: malformed: ...").
				if strings.HasPrefix(r.Message, string(r.Reason)+":") {
					t.Errorf("the message repeats the reason code: %q", r.Message)
				}
				nogo.check(t, "the rejection", r.Message)
			})
		}
	})

	t.Run("receipt and status API", func(t *testing.T) {
		for _, c := range cases {
			if c.eventID == "" {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				// Receipts and statuses are about the bytes: the refusal
				// of these bytes, or, for the id logged with its first
				// bytes, id_conflict naming their leaf (before the fix:
				// committed, for bytes that are not in the log).
				sum := sha256.Sum256(c.data)
				wantStatus, wantReason := natsbus.ReceiptRejected, c.reason
				if c.logged {
					wantStatus = natsbus.ReceiptIDConflict
				}
				if !c.noConsumer {
					r := requestReceipt(ctx, t, h.nc, c.subject, c.eventID, c.data)
					if r.Status != wantStatus || r.Reason != wantReason {
						t.Errorf("receipt: %s (%s), want %s (%s)", r.Status, r.Reason, wantStatus, wantReason)
					}
					if c.logged && r.LeafIndex != loggedIndex(t, h, logged) {
						t.Errorf("id_conflict receipt names leaf %d, want %d", r.LeafIndex, loggedIndex(t, h, logged))
					}
				}
				// Anonymous: only with the envelope's hash, and only a
				// reason code.
				if code, body := httpDo(t, api.URL, "GET", "/v1/events/"+c.eventID+"/status", "", ""); code != http.StatusBadRequest {
					t.Errorf("anonymous status without sha256: %d %s, want 400", code, body)
				}
				code, body := httpDo(t, api.URL, "GET", "/v1/events/"+c.eventID+"/status?sha256="+hex.EncodeToString(sum[:]), "", "")
				var st httpapi.StatusResponse
				if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
					t.Fatalf("status API: %d %s", code, body)
				}
				if string(st.Status) != string(wantStatus) || st.Reason != wantReason || st.Message != "" {
					t.Errorf("anonymous status API: %+v, want %s with reason %s and no message", st, wantStatus, wantReason)
				}
				nogo.check(t, "the status API", body)
				if c.subject != partyA {
					return
				}
				// The party itself, about its own id: also the message.
				code, body = httpDo(t, api.URL, "GET", "/v1/events/"+c.eventID+"/status?sha256="+hex.EncodeToString(sum[:]), "party-token", "")
				st = httpapi.StatusResponse{}
				if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
					t.Fatalf("status API for the party: %d %s", code, body)
				}
				if string(st.Status) != string(wantStatus) || st.Reason != wantReason || (!c.logged && st.Message == "") {
					t.Errorf("the party's status API: %+v, want %s with reason %s and a message", st, wantStatus, wantReason)
				}
				nogo.check(t, "the party's status API", body)
			})
		}
	})

	t.Run("publish call", func(t *testing.T) {
		for _, c := range h.publishCases() {
			total++
			t.Run(c.name, func(t *testing.T) {
				err := c.do(ctx)
				if err == nil {
					t.Fatal("the call succeeded")
				}
				if c.is != nil && !errors.Is(err, c.is) {
					t.Errorf("error %q does not wrap %v", err, c.is)
				}
				if !strings.Contains(err.Error(), c.says) {
					t.Errorf("error %q does not say %q", err, c.says)
				}
				nogo.check(t, "the error", err.Error())
			})
		}
	})

	// A registered access request, for the release cases.
	var registered httpapi.InzageStatus
	{
		body := fmt.Sprintf(`{"id_type":"bsn","pseudonyms":[{"key_id":%q,"pseudonym":%q}],"relation":"parent","child_16_or_older":false}`,
			subjectKey.ID, logged.d.Subject.Pseudonym)
		code, resp := httpDo(t, api.URL, "POST", "/v1/inzage", "desk-1-token", body)
		if code != http.StatusCreated || json.Unmarshal([]byte(resp), &registered) != nil {
			t.Fatalf("registering an access request: %d %s", code, resp)
		}
	}
	future := h.events(1)[0]
	future.d.OccurredAt = time.Now().UTC().Add(365 * 24 * time.Hour).Truncate(time.Millisecond)
	future.env = h.env.Sign(t, future.d)
	if _, err := h.publisher(future.d.Discloser).Publish(ctx, future.d); err != nil {
		t.Fatal(err)
	}
	futureReceipt := waitReceipt(t, h.publisher(future.d.Discloser), future.d.ID, future.env)
	otherEvent := good[0]
	for _, ev := range good {
		if ev.d.Discloser != partyA {
			otherEvent = ev
			break
		}
	}

	t.Run("HTTP", func(t *testing.T) {
		big := `{"id_type":"bsn","pseudonyms":[` + strings.Repeat(`{"key_id":"k1","pseudonym":"`+strings.Repeat("0", 64)+`"},`, 200) + `{}]}`
		inzage := func(pseudonym string) string {
			return fmt.Sprintf(`{"id_type":"bsn","pseudonyms":[{"key_id":"k1","pseudonym":%q}],"relation":"parent"}`, pseudonym)
		}
		for _, c := range []struct {
			name, method, path, token, body string
			status                          int
			code                            string
		}{
			{"status: not a UUID", "GET", "/v1/events/not-an-id/status", "", "", 400, "bad_event_id"},
			{"status: a UUIDv4", "GET", "/v1/events/" + uuid.NewString() + "/status", "", "", 400, "bad_event_id"},
			{"status: upper case", "GET", "/v1/events/" + strings.ToUpper(logged.d.ID) + "/status", "", "", 400, "bad_event_id"},
			{"status: a BSN for the id", "GET", "/v1/events/" + badBSN + "/status", "", "", 400, "bad_event_id"},
			{"event: no token", "GET", "/v1/events/" + logged.d.ID, "", "", 401, "unauthorized"},
			{"event: unknown token", "GET", "/v1/events/" + logged.d.ID, "not-a-token", "", 401, "unauthorized"},
			{"event: basic auth", "GET", "/v1/events/" + logged.d.ID, "Basic Zm9vOmJhcg==", "", 401, "unauthorized"},
			{"event: another party's event", "GET", "/v1/events/" + otherEvent.d.ID, "party-token", "", 404, "not_found"},
			{"event: desk role", "GET", "/v1/events/" + logged.d.ID, "desk-1-token", "", 403, "forbidden"},
			{"entries: party role", "GET", "/v1/entries", "party-token", "", 403, "forbidden"},
			{"entries: negative limit", "GET", "/v1/entries?limit=-1", "fg-token", "", 400, "bad_parameter"},
			{"entries: from not a number", "GET", "/v1/entries?from=abc", "fg-token", "", 400, "bad_parameter"},
			{"entries: limit zero", "GET", "/v1/entries?limit=0", "fg-token", "", 400, "bad_parameter"},
			{"checkpoints: public", "GET", "/v1/checkpoints", "", "", 401, "unauthorized"},
			{"inclusion: beyond the tree", "GET", "/v1/proof/inclusion?index=99999999", "", "", 400, "bad_parameter"},
			{"inclusion: no parameters", "GET", "/v1/proof/inclusion", "", "", 400, "bad_parameter"},
			{"inclusion: bad event id", "GET", "/v1/proof/inclusion?event_id=" + badBSN, "", "", 400, "bad_parameter"},
			{"inclusion: index and event id", "GET", "/v1/proof/inclusion?index=1&event_id=" + logged.d.ID, "", "", 400, "bad_parameter"},
			{"consistency: old zero", "GET", "/v1/proof/consistency?old=0", "", "", 400, "bad_parameter"},
			{"consistency: old after new", "GET", "/v1/proof/consistency?old=5&new=2", "", "", 400, "bad_parameter"},
			{"tile: bad path", "GET", "/tile/0/abc", "", "", 400, "bad_tile_path"},
			{"tile: beyond the tree", "GET", "/tile/0/999", "", "", 404, "not_found"},
			{"tile: too wide", "GET", "/tile/0/000.p/257", "", "", 400, "bad_tile_path"},
			{"inzage: malformed JSON", "POST", "/v1/inzage", "desk-1-token", `{"id_type":`, 400, "bad_request"},
			{"inzage: a BSN in an unknown field", "POST", "/v1/inzage", "desk-1-token", `{"bsn":"` + badBSN + `"}`, 400, "bad_request"},
			{"inzage: a BSN for the pseudonym", "POST", "/v1/inzage", "desk-1-token", inzage(badBSN), 400, "invalid_request"},
			{"inzage: no pseudonyms", "POST", "/v1/inzage", "desk-1-token", `{"id_type":"bsn","pseudonyms":[],"relation":"parent"}`, 400, "invalid_request"},
			{"inzage: unknown id type", "POST", "/v1/inzage", "desk-1-token",
				strings.Replace(inzage(badPseudonym), `"bsn"`, `"paspoort"`, 1), 400, "invalid_request"},
			{"inzage: young person under 16", "POST", "/v1/inzage", "desk-1-token",
				strings.Replace(inzage(badPseudonym), `"parent"`, `"young-person"`, 1), 400, "invalid_request"},
			{"inzage: body over 16 KiB", "POST", "/v1/inzage", "desk-1-token", big, 400, "bad_request"},
			{"inzage: FG role", "POST", "/v1/inzage", "fg-token", inzage(badPseudonym), 403, "forbidden"},
			{"inzage: party role", "POST", "/v1/inzage", "party-token", inzage(badPseudonym), 403, "forbidden"},
			{"inzage: no token", "POST", "/v1/inzage", "", inzage(badPseudonym), 401, "unauthorized"},
			{"release: by the desk user who registered", "POST", "/v1/inzage/" + registered.ID + "/release", "desk-1-token", "", 403, "second_person_required"},
			{"release: unknown request", "POST", "/v1/inzage/" + uuid.Must(uuid.NewV7()).String() + "/release", "desk-2-token", "", 404, "not_found"},
			{"release: bad withheld ground body", "POST", "/v1/inzage/" + registered.ID + "/release", "desk-2-token", `{"withheld":"all"}`, 400, "bad_request"},
			{"release: FG role", "POST", "/v1/inzage/" + registered.ID + "/release", "fg-token", "", 403, "forbidden"},
			{"access request: party role", "GET", "/v1/inzage/" + registered.ID, "party-token", "", 403, "forbidden"},
			{"method: DELETE a checkpoint", "DELETE", "/checkpoint", "fg-token", "", 405, ""},
		} {
			total++
			t.Run(c.name, func(t *testing.T) {
				code, body := httpDo(t, api.URL, c.method, c.path, c.token, c.body)
				if code != c.status {
					t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.status)
				}
				if c.code != "" {
					var e struct{ Code, Message string }
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != c.code || e.Message == "" {
						t.Errorf("body %s, want code %q and a message", body, c.code)
					}
				}
				nogo.check(t, "the HTTP response", body)
			})
		}
	})

	t.Run("inzage: rate limited", func(t *testing.T) {
		total++
		body := fmt.Sprintf(`{"id_type":"bsn","pseudonyms":[{"key_id":%q,"pseudonym":%q}],"relation":"parent"}`,
			subjectKey.ID, badPseudonym)
		var codes []int
		for range 3 {
			code, resp := httpDo(t, limited.URL, "POST", "/v1/inzage", "desk-2-token", body)
			codes = append(codes, code)
			nogo.check(t, "the HTTP response", resp)
		}
		if codes[0] != http.StatusCreated || codes[2] != http.StatusTooManyRequests {
			t.Fatalf("three quick access requests from one desk user answered %v, want 201 first and 429 by the third", codes)
		}
	})

	// A disclosure dated a year ahead is refused (occurred_in_future): the
	// receipt says so, and it is not in the log.
	t.Run("future date is refused", func(t *testing.T) {
		total++
		if futureReceipt.Status != natsbus.ReceiptRejected || futureReceipt.Reason != events.ReasonOccurredInFuture {
			t.Fatalf("receipt %+v, want rejected as %s", futureReceipt, events.ReasonOccurredInFuture)
		}
		tok := "fg-token"
		if future.d.Discloser == partyA {
			tok = "party-token"
		}
		if code, body := httpDo(t, api.URL, "GET", "/v1/events/"+future.d.ID, tok, ""); code != http.StatusNotFound {
			t.Fatalf("GET the future-dated event: %d %s", code, body)
		}
	})

	if total < 30 {
		t.Fatalf("the table has %d cases; issue 8 asks for at least 30", total)
	}
	// Nor does any log line of the ledger and ingest.
	nogo.check(t, "the log", h.logs.String())
	// Nor any key or value in the store: a token the sender chose for the
	// subject once became the key of a status record.
	chosen := forbidden{badBSN, dottedBSN, onderwijsnummer}
	if err := h.store.Scan(ctx, []byte{0}, []byte{0xff}, func(k, v []byte) error {
		chosen.check(t, "a store key", string(k))
		chosen.check(t, "a stored value", string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("bad-input table: %d cases (%d on the bus among %d good events)", total, len(cases), len(good))
	if got := counter(t, "spoor_ingest_rejected_total", h.in.Metrics()); got != float64(len(cases)+1) {
		t.Errorf("spoor_ingest_rejected_total = %v, want %d (the bus cases and the future date)", got, len(cases)+1)
	}
	// Nothing refused was logged, and the good events were not logged twice
	// by anything that came later.
	h.checkExactlyOnce(append([]sent{logged}, good...), 0)
}

// publishCase is a call a party's system makes that must fail at once.
type publishCase struct {
	name string
	do   func(ctx context.Context) error
	is   error  // a sentinel the error wraps, if any
	says string // a fragment of the error's message
}

// publishCases are refused by the client or the bus, before the ledger.
func (h *harness) publishCases() []publishCase {
	t := h.t
	party := h.parties[0]
	key := h.env.Demo.Parties[party]
	pub := h.publisher(party)
	subjectKey := h.env.Demo.SubjectKey
	valid := func() *events.Disclosure {
		d, _ := h.fresh()
		d.ID = uuid.Must(uuid.NewV7()).String()
		d.Discloser = party
		d.Recipients = []string{h.otherParty(party)}
		return d
	}
	pretty := func() []byte {
		env, err := events.Sign(func() *events.Disclosure { d := valid(); events.Seal(d, key); return d }(), key)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := json.Indent(&b, env, "", " "); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}()
	otherEnv := func() []byte {
		other := h.otherParty(party)
		d, _ := h.fresh()
		d.ID = uuid.Must(uuid.NewV7()).String()
		d.Recipients = []string{party}
		k := h.env.Demo.Parties[other]
		events.Seal(d, k)
		env, err := events.Sign(d, k)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}()
	return []publishCase{
		{name: "invalid BSN at publish (elfproef)", is: events.ErrInvalidNumber, says: "elfproef", do: func(context.Context) error {
			_, err := events.SubjectFor(subjectKey, events.IDTypeBSN, "999990018")
			return err
		}},
		{name: "BSN of eight digits", is: events.ErrInvalidNumber, says: "9 digits", do: func(context.Context) error {
			_, err := events.SubjectFor(subjectKey, events.IDTypeBSN, "99999001")
			return err
		}},
		{name: "invalid BSN at inzage", is: events.ErrInvalidNumber, says: "only digits", do: func(context.Context) error {
			// What `spoor inzage request` computes from standard input
			// before anything is sent.
			_, err := events.Pseudonym(subjectKey, events.IDTypeBSN, "99999O019")
			return err
		}},
		{name: "missing justification", says: "justification: is required", do: func(ctx context.Context) error {
			d := valid()
			d.Justification = ""
			_, err := pub.Publish(ctx, d)
			return err
		}},
		{name: "text that is not UTF-8", says: "not valid UTF-8", do: func(ctx context.Context) error {
			d := valid()
			d.CaseRef = "dossier \xff"
			_, err := pub.Publish(ctx, d)
			return err
		}},
		{name: "recipient twice", says: "repeats recipients[0]", do: func(ctx context.Context) error {
			d := valid()
			d.Recipients = append(d.Recipients, d.Recipients[0])
			_, err := pub.Publish(ctx, d)
			return err
		}},
		{name: "no categories", says: "categories", do: func(ctx context.Context) error {
			d := valid()
			d.Categories = nil
			_, err := pub.Publish(ctx, d)
			return err
		}},
		{name: "non-canonical envelope", says: "canonical", do: func(ctx context.Context) error {
			_, err := pub.PublishEnvelope(ctx, party, pretty)
			return err
		}},
		{name: "another party's envelope on one's own subject", says: "is not party", do: func(ctx context.Context) error {
			_, err := pub.PublishEnvelope(ctx, party, otherEnv)
			return err
		}},
		{name: "invalid party id", is: natsbus.ErrInvalidParty, says: "invalid party", do: func(ctx context.Context) error {
			_, err := pub.PublishEnvelope(ctx, "Gemeente Amersfoort", otherEnv)
			return err
		}},
		{name: "message over the bus's limit", says: "maximum", do: func(ctx context.Context) error {
			m := nats.NewMsg(natsbus.DisclosureSubject(party))
			m.Data = bytes.Repeat([]byte("x"), natsbus.MaxBatchBytes+8<<10)
			_, err := h.js.PublishMsg(ctx, m)
			return err
		}},
		{name: "subject outside the stream", says: "no response from stream", do: func(ctx context.Context) error {
			m := nats.NewMsg("spoor.disclosure." + party)
			m.Data = []byte("{}")
			_, err := h.js.PublishMsg(ctx, m)
			return err
		}},
	}
}

// httpDo makes one request; token is a bearer token, or a whole
// Authorization value when it has a space.
func httpDo(t *testing.T, base, method, path, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.Contains(token, " "):
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
