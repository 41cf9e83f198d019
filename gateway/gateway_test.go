package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/gateway"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/ingest"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
)

// The parties of these tests, both of the demo covenant of regio
// Amersfoort, each with a client token; one gateway holds both keys.
const (
	partyA = "gemeente-amersfoort"
	partyB = "swv-de-eem"
	tokenA = "token-of-gemeente-amersfoort"
	tokenB = "token-of-swv-de-eem"
	// bsn passes the elfproef (9999 test range); badBSN fails it.
	bsn    = "999990019"
	badBSN = "999990018"
	// fgToken is the FG's token on the rig's ledger API.
	fgToken = "token-of-the-fg"
)

// waitLong bounds a test's waits for a slow, shared machine; it is never a
// sleep.
const waitLong = 30 * time.Second

// lockedBuffer is a bytes.Buffer safe for concurrent use (a log's writer).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rig is a real ledger on Pebble fed by ingest from an embedded NATS
// server, wired as `spoor serve` wires them, and a gateway in front of it
// over real HTTP on loopback.
type rig struct {
	t      testing.TB
	env    *testledger.Env
	l      *ledger.Ledger
	store  *pebblestore.Store
	srv    *server.Server
	js     jetstream.JetStream
	nc     *nats.Conn
	logs   *lockedBuffer
	logger *slog.Logger
	http   *httptest.Server
	gw     *gateway.Gateway
	cfg    gateway.Config
	ingest func() // starts ingest when the rig was made without it

	// ledgerHTTP serves the ledger's HTTP API (ledgerHandler, swapped when
	// the ledger restarts).
	ledgerHTTP    *httptest.Server
	ledgerHandler atomic.Pointer[http.Handler]
	ledgerMu      sync.RWMutex
	stopIngest    context.CancelFunc
	wg            sync.WaitGroup
}

// newRig starts everything; withIngest false leaves the ledger unfed until
// r.ingest() is called.
func newRig(t testing.TB, withIngest bool, receiptWait time.Duration) *rig {
	t.Helper()
	return newDemoRig(t, "amersfoort", withIngest, receiptWait)
}

// demoParties are the two parties of each demo covenant whose keys the
// rig's gateway holds: tokenA is for the first, tokenB for the second.
var demoParties = map[string][2]string{
	"amersfoort": {partyA, partyB},
	"waterweg":   {"gemeente-vlaardingen", "swv-ppo-nwn"},
}

// newDemoRig is newRig on demo covenant name.
func newDemoRig(t testing.TB, name string, withIngest bool, receiptWait time.Duration) *rig {
	t.Helper()
	env := testledger.NewDemo(t, name)
	pa, pb := demoParties[name][0], demoParties[name][1]
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js := natstest.JetStream(t, nc)
	var parties []string
	for _, p := range env.Demo.Signed.Covenant.Parties {
		parties = append(parties, p.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, parties, natsbus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, env: env, srv: srv, js: js, nc: nc, logs: logs, logger: logger}
	r.openLedger(nil)
	r.ingest = r.startIngest
	if withIngest {
		r.startIngest()
	}
	t.Cleanup(r.stopLedger)
	chain, err := gateway.LoadCovenantChain([][]byte{env.Demo.Signed.Envelope.Raw}, env.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = gateway.Config{
		Chain:      chain,
		SubjectKey: env.Demo.SubjectKey,
		Parties:    []gateway.Party{r.party(pa), r.party(pb)},
		Clients: map[[32]byte]gateway.Client{
			gateway.TokenHash(tokenA): {Name: "system-a", Party: pa},
			gateway.TokenHash(tokenB): {Name: "system-b", Party: pb},
		},
		ReceiptWait: receiptWait,
		MaxBody:     1 << 20,
		Logger:      logger,
	}
	r.gw = r.newGateway()
	r.http = httptest.NewServer(r.gw.Handler())
	t.Cleanup(r.http.Close)
	return r
}

// openLedger opens the rig's ledger on its store, taking sc (nil: the
// demo's version 1) as the covenant as spoor serve --covenant does, and
// serves its HTTP API at r.ledgerHTTP.
func (r *rig) openLedger(sc *events.SignedCovenant) {
	r.t.Helper()
	r.l, r.store = r.env.Open(r.t, ledger.Config{IdleCosign: -1, Logger: r.logger, Covenant: sc})
	var h http.Handler = httpapi.New(httpapi.Config{Ledger: r.l,
		Tokens: map[[32]byte]httpapi.Principal{sha256.Sum256([]byte(fgToken)): {Role: httpapi.RoleFG}}})
	if r.ledgerHTTP == nil {
		r.ledgerHandler.Store(&h)
		r.ledgerHTTP = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.ledgerMu.RLock()
			defer r.ledgerMu.RUnlock()
			(*r.ledgerHandler.Load()).ServeHTTP(w, req)
		}))
		r.t.Cleanup(r.ledgerHTTP.Close)
		return
	}
	r.ledgerHandler.Store(&h)
}

// startIngest feeds the ledger from the bus and answers receipts.
func (r *rig) startIngest() {
	in := ingest.New(ingest.Config{Ledger: r.l, JS: r.js, Logger: r.logger})
	ctx, stop := context.WithCancel(context.Background())
	r.stopIngest = stop
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := in.Run(ctx); err != nil {
			r.t.Errorf("ingest.Run: %v", err)
		}
	}()
	go func() { defer r.wg.Done(); _ = in.ServeReceipts(ctx, r.nc) }()
}

// stopLedger stops ingest and closes the ledger and its store.
func (r *rig) stopLedger() {
	if r.stopIngest != nil {
		r.stopIngest()
	}
	r.wg.Wait()
	if r.l == nil {
		return
	}
	// As spoor serve does, stop answering HTTP before the ledger closes.
	var down http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
	})
	r.ledgerMu.Lock() // waits for the requests in flight
	r.ledgerHandler.Store(&down)
	r.ledgerMu.Unlock()
	if err := r.l.Close(); err != nil {
		r.t.Errorf("ledger.Close: %v", err)
	}
	if err := r.store.Close(); err != nil {
		r.t.Errorf("store.Close: %v", err)
	}
	r.l, r.store, r.stopIngest = nil, nil, nil
}

// restartLedger stops the ledger and opens it again with covenant sc, as an
// operator restarts spoor serve with a new covenant version.
func (r *rig) restartLedger(sc *events.SignedCovenant) {
	r.t.Helper()
	r.stopLedger()
	r.openLedger(sc)
	r.startIngest()
}

// party connects as a party's system would: its own connection, with the
// party's inbox prefix.
func (r *rig) party(id string) gateway.Party {
	nc := natstest.Connect(r.t, r.srv, nats.CustomInboxPrefix(natsbus.InboxPrefix(id)))
	return gateway.Party{Key: r.env.Demo.Parties[id], JS: natstest.JetStream(r.t, nc)}
}

func (r *rig) newGateway() *gateway.Gateway {
	r.t.Helper()
	g, err := gateway.New(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return g
}

// onBus is how many messages the bus's disclosure stream has ever stored
// (its last sequence number): the stream drops a message once the ledger
// acks it, so its count of messages would not show a publish.
func (r *rig) onBus() uint64 {
	r.t.Helper()
	s, err := r.js.Stream(context.Background(), natsbus.Stream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.LastSeq
}

// input is a valid disclosure of partyA as a client sends it, about bsn;
// edit changes it first.
func input(edit func(m map[string]any)) []byte {
	m := map[string]any{
		"trace_id":            "4bf92f3577b34da6a3ce929d0e0e4736",
		"span_id":             "00f067aa0ba902b7",
		"processing_activity": "leerplicht-verzuimmelding",
		"occurred_at":         time.Now().UTC().Add(-time.Hour).Truncate(time.Second).Format(time.RFC3339),
		"recipients":          []string{partyB},
		"subject":             map[string]any{"id_type": "bsn", "number": bsn},
		"subject_age_band":    "12-15",
		"categories":          []string{"identificatie", "onderwijsgegevens"},
		"purpose":             "verzuim-en-leerplicht",
		"legal_basis":         map[string]any{"ground": "c", "statute": "leerplichtwet-21"},
		"justification":       "Verzuim boven de wettelijke grens gemeld",
		"channel":             "system",
		"actor":               map[string]any{"role": "leerplichtambtenaar", "staff_id": "lpa-0042"},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// response is an HTTP answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *rig) post(token, key, contentType string, body []byte) response {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.http.URL+"/v1/disclosures", bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Content-Type", contentType)
	return r.do(req)
}

func (r *rig) get(token, path string) response {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.http.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return r.do(req)
}

func (r *rig) do(req *http.Request) response {
	r.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	if strings.Contains(string(b), bsn) || strings.Contains(string(b), badBSN) {
		r.t.Errorf("an answer repeats the number: %s", b)
	}
	if resp.Header.Get("API-Version") != gateway.APIVersion {
		r.t.Errorf("answer without API-Version %s", gateway.APIVersion)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func decodeResult(t *testing.T, b []byte) *gateway.Result {
	t.Helper()
	var res gateway.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("answer is not a Result: %v: %s", err, b)
	}
	return &res
}

// verifyReceipt checks a committed Result as a client would: the
// checkpoint's signatures by the pinned log keys, the leaf record naming
// the envelope's hash, and the inclusion proof against the checkpoint.
func (r *rig) verifyReceipt(res *gateway.Result) {
	r.t.Helper()
	if res.Status != natsbus.ReceiptCommitted || res.LeafIndex == nil {
		r.t.Fatalf("result is %s, not committed with a leaf", res.Status)
	}
	cp, err := verifier.OpenCheckpoint([]byte(res.Checkpoint), r.env.Keys)
	if err != nil {
		r.t.Fatalf("checkpoint: %v", err)
	}
	rec, err := verifier.ParseLeafRecord(res.LeafRecord)
	if err != nil {
		r.t.Fatalf("leaf record: %v", err)
	}
	if rec.BodyHash != sha256.Sum256(res.Envelope) || hex.EncodeToString(rec.BodyHash[:]) != res.EnvelopeSHA256 {
		r.t.Fatal("the leaf record does not name the envelope's hash")
	}
	if err := verifier.VerifyInclusion(*res.LeafIndex, cp.Size, verifier.LeafHash(res.LeafRecord), res.InclusionProof, cp.Hash); err != nil {
		r.t.Fatalf("inclusion proof: %v", err)
	}
	if _, _, err := events.Open(res.Envelope, r.env.Demo.Signed.Covenant.Origin, r.env.Demo.Signed.Covenant); err != nil {
		r.t.Fatalf("the envelope does not open: %v", err)
	}
}

func TestPostOneDisclosure(t *testing.T) {
	r := newRig(t, true, waitLong)
	body := input(nil)
	resp := r.post(tokenA, "order-1", "application/json", body)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	res := decodeResult(t, resp.body)
	r.verifyReceipt(res)
	d, _, err := events.Open(res.Envelope, r.env.Demo.Signed.Covenant.Origin, r.env.Demo.Signed.Covenant)
	if err != nil {
		t.Fatal(err)
	}
	if d.Discloser != partyA || d.ID != events.KeyedEventID(r.env.Demo.Parties[partyA].SaltSecret, partyA, "order-1") {
		t.Errorf("discloser %s id %s: not the client's party, or not derived from the key", d.Discloser, d.ID)
	}
	want, err := events.Pseudonym(r.env.Demo.SubjectKey, events.IDTypeBSN, bsn)
	if err != nil {
		t.Fatal(err)
	}
	if d.Subject.Pseudonym != want || d.Subject.KeyID != r.env.Demo.SubjectKey.ID {
		t.Error("the subject is not the number's pseudonym under the covenant's key")
	}
	bus := r.onBus()

	// A retry (same key, same body) is answered from the ledger's receipt
	// and publishes nothing.
	again := r.post(tokenA, "order-1", "application/json", body)
	if again.status != http.StatusOK {
		t.Fatalf("retry: status %d: %s", again.status, again.body)
	}
	res2 := decodeResult(t, again.body)
	if res2.EventID != res.EventID || *res2.LeafIndex != *res.LeafIndex {
		t.Errorf("retry answered event %s at leaf %d, want %s at %d", res2.EventID, *res2.LeafIndex, res.EventID, *res.LeafIndex)
	}
	// A restarted (or second) gateway with the same keys derives the same
	// event and bytes.
	second := httptest.NewServer(r.newGateway().Handler())
	defer second.Close()
	first := r.http
	r.http = second
	third := r.post(tokenA, "order-1", "application/json", body)
	r.http = first
	if third.status != http.StatusOK || decodeResult(t, third.body).EventID != res.EventID {
		t.Errorf("a second gateway answered %d: %s", third.status, third.body)
	}
	if got := r.onBus(); got != bus {
		t.Errorf("retries published: the bus went from %d to %d messages", bus, got)
	}
	if r.l.Head().Size != *res.LeafIndex+1 {
		t.Errorf("the log has %d leaves after retries, want %d", r.l.Head().Size, *res.LeafIndex+1)
	}
}

func TestPostJSONLines(t *testing.T) {
	r := newRig(t, true, waitLong)
	var body bytes.Buffer
	for i, n := range []string{"999990019", "999990020", "999990032"} {
		if events.CheckNumber(events.IDTypeBSN, n) != nil {
			t.Fatalf("test number %d fails the elfproef", i)
		}
		body.Write(input(func(m map[string]any) { m["subject"] = map[string]any{"id_type": "bsn", "number": n} }))
		body.WriteString("\r\n\n") // a blank line counts as a line
	}
	resp := r.post(tokenA, "batch-1", "application/jsonl", body.Bytes())
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var out gateway.BatchResult
	if err := json.Unmarshal(resp.body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 3 {
		t.Fatalf("%d results, want 3", len(out.Results))
	}
	ids := map[string]bool{}
	for i, res := range out.Results {
		if res.Line != 1+2*i {
			t.Errorf("result %d names line %d, want %d", i, res.Line, 1+2*i)
		}
		r.verifyReceipt(res)
		ids[res.EventID] = true
	}
	if len(ids) != 3 {
		t.Errorf("three lines got %d distinct event ids", len(ids))
	}
}

// TestBadInputPublishesNothing drives the gateway over HTTP with bad
// input: each is answered with a problem+json naming the line and field,
// and nothing reaches the bus or the ledger.
func TestBadInputPublishesNothing(t *testing.T) {
	r := newRig(t, true, waitLong)
	// One event is logged under key "taken" first, for the conflict case.
	if resp := r.post(tokenA, "taken", "application/json", input(nil)); resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	bus, size := r.onBus(), r.l.Head().Size
	good := input(nil)
	twoLines := func(second []byte) []byte { return append(append(append([]byte{}, good...), '\n'), second...) }
	cases := []struct {
		name        string
		token, key  string
		contentType string
		body        []byte
		status      int
		code        string
		line        int    // 0: the problem names no line
		field       string // the field the first error names
		errCode     string
	}{
		{"malformed JSON", tokenA, "k1", "application/json", []byte(`{"trace_id": "4bf9`), 400, gateway.ProblemMalformedJSON, 1, "", gateway.CodeMalformedJSON},
		{"malformed second line", tokenA, "k2", "application/jsonl", twoLines([]byte(`{"purpose": 12}`)), 400, gateway.ProblemMalformedJSON, 2, "purpose", gateway.CodeMalformedJSON},
		{"BSN failing the elfproef", tokenA, "k3", "application/jsonl",
			twoLines(input(func(m map[string]any) { m["subject"] = map[string]any{"id_type": "bsn", "number": badBSN} })),
			422, gateway.ProblemInvalidDisclosure, 2, "subject.number", gateway.CodeInvalidNumber},
		{"BSN as a JSON number", tokenA, "k4", "application/json",
			input(func(m map[string]any) { m["subject"] = map[string]any{"id_type": "bsn", "number": 999990019} }),
			400, gateway.ProblemMalformedJSON, 1, "subject.number", gateway.CodeMalformedJSON},
		{"unknown purpose", tokenA, "k5", "application/json", input(func(m map[string]any) { m["purpose"] = "marketing" }),
			422, gateway.ProblemInvalidDisclosure, 1, "purpose", events.RulePurposeUnknown},
		{"unknown category", tokenA, "k6", "application/json", input(func(m map[string]any) { m["categories"] = []string{"identificatie", "schoenmaat"} }),
			422, gateway.ProblemInvalidDisclosure, 1, "categories[1]", events.RuleCategoryUnknown},
		{"invalid field", tokenA, "k7", "application/json", input(func(m map[string]any) { m["channel"] = "pigeon" }),
			422, gateway.ProblemInvalidDisclosure, 1, "channel", gateway.CodeInvalid},
		{"occurred in the future", tokenA, "k8", "application/json",
			input(func(m map[string]any) { m["occurred_at"] = time.Now().UTC().Add(24 * time.Hour).Format(time.RFC3339) }),
			422, gateway.ProblemInvalidDisclosure, 1, "occurred_at", string(events.ReasonOccurredInFuture)},
		{"an id of its own", tokenA, "k9", "application/json", input(func(m map[string]any) { m["id"] = "0190a0a0-0000-7000-8000-000000000000" }),
			400, gateway.ProblemMalformedJSON, 1, "id", gateway.CodeMalformedJSON},
		{"a BSN as a member name", tokenA, "k10", "application/json", input(func(m map[string]any) { m[bsn] = "x" }),
			400, gateway.ProblemMalformedJSON, 1, "", gateway.CodeMalformedJSON},
		{"10 MB body", tokenA, "k11", "application/jsonl", bytes.Repeat(append(append([]byte{}, good...), '\n'), 10<<20/len(good)+1),
			413, gateway.ProblemBodyTooLarge, 0, "", ""},
		{"unknown token", "not-a-token", "k12", "application/json", good, 401, gateway.ProblemUnauthorized, 0, "", ""},
		{"no token", "", "k13", "application/json", good, 401, gateway.ProblemUnauthorized, 0, "", ""},
		{"another party", tokenB, "k14", "application/json", input(func(m map[string]any) { m["discloser"] = partyA; m["recipients"] = []string{"gemeente-baarn"} }),
			403, gateway.ProblemOtherParty, 1, "discloser", gateway.CodeOtherParty},
		{"wrong origin", tokenA, "k15", "application/json", input(func(m map[string]any) { m["origin"] = "spoor.example/elders" }),
			422, gateway.ProblemInvalidDisclosure, 1, "origin", gateway.CodeWrongOrigin},
		{"reused Idempotency-Key with another body", tokenA, "taken", "application/json",
			input(func(m map[string]any) { m["justification"] = "Een andere tekst" }),
			422, gateway.ProblemIdempotencyConflict, 1, "", gateway.ProblemIdempotencyConflict},
		{"no Idempotency-Key", tokenA, "", "application/json", good, 400, gateway.ProblemIdempotencyKeyMissing, 0, "", ""},
		{"other media type", tokenA, "k16", "text/plain", good, 415, gateway.ProblemUnsupportedMediaType, 0, "", ""},
		{"empty JSON Lines", tokenA, "k17", "application/jsonl", []byte("\n\n"), 400, gateway.ProblemMalformedJSON, 1, "", gateway.CodeMalformedJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := r.post(c.token, c.key, c.contentType, c.body)
			if resp.status != c.status {
				t.Fatalf("status %d, want %d: %s", resp.status, c.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != gateway.ProblemContentType {
				t.Errorf("Content-Type %q, want %s", ct, gateway.ProblemContentType)
			}
			var p gateway.Problem
			if err := json.Unmarshal(resp.body, &p); err != nil {
				t.Fatalf("not a problem: %v: %s", err, resp.body)
			}
			if p.Code != c.code || p.Status != c.status || p.Type != gateway.ProblemType(c.code) || p.Title == "" {
				t.Errorf("problem %+v, want code %s status %d", p, c.code, c.status)
			}
			if c.line == 0 {
				return
			}
			if len(p.Errors) == 0 {
				t.Fatalf("the problem names no line: %s", resp.body)
			}
			e := p.Errors[0]
			if e.Line != c.line || e.Field != c.field || e.Code != c.errCode || e.Detail == "" {
				t.Errorf("error %+v, want line %d field %q code %s", e, c.line, c.field, c.errCode)
			}
		})
	}
	if got := r.onBus(); got != bus {
		t.Errorf("refused requests published: the bus went from %d to %d messages", bus, got)
	}
	if got := r.l.Head().Size; got != size {
		t.Errorf("refused requests reached the ledger: %d leaves, want %d", got, size)
	}
	// The log holds the conflict's first body and nothing else of it.
	r.checkNoNumberStored()
}

// checkNoNumberStored greps the ledger's store, the bus's store and every
// log line for the numbers the tests sent.
func (r *rig) checkNoNumberStored() {
	r.t.Helper()
	if s := r.logs.String(); strings.Contains(s, bsn) || strings.Contains(s, badBSN) {
		r.t.Error("a log line holds a number")
	}
	if logs := r.logs.String(); !strings.Contains(logs, "answered") && !strings.Contains(logs, "form recorded") {
		r.t.Error("the gateway logged nothing: the grep of its log proves nothing")
	}
	for _, dir := range []string{datadir.Dir(r.env.Dir).Ledger(), r.srv.JetStreamConfig().StoreDir} {
		files := 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			if bytes.Contains(b, []byte(bsn)) || bytes.Contains(b, []byte(badBSN)) {
				r.t.Errorf("%s holds a number", path)
			}
			return nil
		})
		if err != nil {
			r.t.Fatal(err)
		}
		if files == 0 {
			r.t.Errorf("no files in %s: the grep proves nothing", dir)
		}
	}
}

// TestPendingAnswersStatusURL: with the ledger not consuming, a POST is
// published and answered 202 past the bound with a status URL; once the
// ledger runs, the status URL answers the committed receipt.
func TestPendingAnswersStatusURL(t *testing.T) {
	r := newRig(t, false, 300*time.Millisecond)
	resp := r.post(tokenA, "late-1", "application/json", input(nil))
	if resp.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.status, resp.body)
	}
	res := decodeResult(t, resp.body)
	loc := resp.header.Get("Location")
	if res.Status != natsbus.ReceiptPending || loc == "" || loc != res.StatusURL {
		t.Fatalf("status %s, Location %q, status_url %q", res.Status, loc, res.StatusURL)
	}
	if r.onBus() != 1 {
		t.Errorf("the bus stored %d messages, want the one published", r.onBus())
	}
	if got := r.get(tokenA, loc); got.status != http.StatusServiceUnavailable || !strings.Contains(string(got.body), gateway.ProblemLedgerUnavailable) {
		t.Errorf("status while the ledger does not answer: %d %s", got.status, got.body)
	}
	r.ingest()
	deadline := time.Now().Add(waitLong)
	for {
		got := r.get(tokenA, loc)
		if got.status == http.StatusOK {
			st := decodeResult(t, got.body)
			if st.Status != natsbus.ReceiptCommitted || st.EventID != res.EventID || st.LeafIndex == nil || st.Checkpoint == "" {
				t.Fatalf("status answer %s", got.body)
			}
			break
		}
		// 202 while the ledger has not committed it; 503 until the
		// ledger's receipt service, just started, answers.
		retry := got.status == http.StatusAccepted ||
			(got.status == http.StatusServiceUnavailable && strings.Contains(string(got.body), gateway.ProblemLedgerUnavailable))
		if !retry || time.Now().After(deadline) {
			t.Fatalf("status %d: %s", got.status, got.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Another party asking for the same event learns nothing.
	if got := r.get(tokenB, loc); got.status != http.StatusAccepted {
		t.Errorf("another party's status answer is %d: %s", got.status, got.body)
	}
	if got := r.get(tokenA, "/v1/disclosures/"+res.EventID); got.status != http.StatusBadRequest {
		t.Errorf("a status request without sha256 answered %d", got.status)
	}
}

// TestOpenAPIMatchesHandler checks that every operation of openapi.json is
// a route of the handler and that every route is in openapi.json.
func TestOpenAPIMatchesHandler(t *testing.T) {
	r := newRig(t, true, waitLong)
	resp := r.get("", "/openapi.json")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", resp.status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Info    struct{ Version string }              `json:"info"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Info.Version != gateway.APIVersion {
		t.Errorf("openapi %q version %q", doc.OpenAPI, doc.Info.Version)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routes := map[string]bool{}
	for _, p := range gateway.RoutePatterns(r.gw) {
		routes[p] = true
		if !documented[p] {
			t.Errorf("route %s is not in openapi.json", p)
		}
	}
	for op := range documented {
		if !routes[op] {
			t.Errorf("openapi.json documents %s, which the handler has no route for", op)
		}
		// And the handler answers it (not the 404 or 405 problem).
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", events.KeyedEventID([]byte("x"), partyA, "y"))
		req, _ := http.NewRequest(method, r.http.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tokenA)
		got := r.do(req)
		var p gateway.Problem
		_ = json.Unmarshal(got.body, &p)
		if p.Code == gateway.ProblemNotFound || p.Code == gateway.ProblemMethodNotAllowed {
			t.Errorf("%s answered %d %s", op, got.status, p.Code)
		}
	}
	if got := r.get(tokenA, "/v1/nothing"); got.status != http.StatusNotFound || got.header.Get("Content-Type") != gateway.ProblemContentType {
		t.Errorf("an unknown path answered %d %s", got.status, got.header.Get("Content-Type"))
	}
	req, _ := http.NewRequest(http.MethodDelete, r.http.URL+"/v1/disclosures", nil)
	if got := r.do(req); got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "POST" {
		t.Errorf("DELETE answered %d, Allow %q", got.status, got.header.Get("Allow"))
	}
}
