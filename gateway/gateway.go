// Package gateway is `spoor gateway`: an HTTP service that an organisation
// runs (or its hosted software supplier runs for it) so that systems in any
// language can record disclosures without a NATS client or DSSE signing.
//
// Data flow: a client POSTs one disclosure (JSON) or many (JSON Lines) with
// the subject's BSN or onderwijsnummer and an Idempotency-Key, under a
// bearer token that maps to exactly one party. The gateway parses each line
// (format.go), turns the number into its pseudonym (the number goes no
// further), derives the event id from the Idempotency-Key
// (events.KeyedEventID under the party's salt secret), signs with the
// party's key and checks the envelope exactly as ingest will (events.Open
// against the covenant in force), and refuses the whole request if any
// line fails, publishing nothing. It asks the ledger for each event's
// receipt first (a retry of a committed event is answered without
// publishing; the same key with another body meets id_conflict and is
// answered 422), publishes the rest through natsbus.Publisher, and waits
// up to Config.ReceiptWait for the receipts. The answer carries each
// receipt (leaf index, inclusion proof, checkpoint, the envelope, and the
// covenant findings), or 202 with a status URL for those still pending.
//
// The gateway keeps no state: a restarted gateway, or a second one with the
// same party keys, derives the same ids and envelopes, so clients retry
// with the same key until they get a final answer.
//
// A client is known by its bearer token, or by its client certificate
// under mutual TLS (Digikoppeling): the certificate's subject serialNumber
// is the organisation's OIN, which the covenant lists per party
// (Config.RequireClientCert, mtls.go). The covenant in force is the latest
// of a chain pinned to the administrator key; FollowCovenants appends the
// versions the ledger logs later (covenant.go). The recording form
// (form.go) lets a professional without a system of their own record a
// disclosure through the same steps.
package gateway

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/parallel"
)

// Defaults of Config.
const (
	// DefaultReceiptWait is how long a POST waits for the ledger's receipts
	// before it answers 202 with status URLs: the stated bound.
	DefaultReceiptWait = 5 * time.Second
	// DefaultMaxBody is the largest request body: 1,024 disclosures of
	// about 4 KB each.
	DefaultMaxBody = 4 << 20
	// DefaultMaxLines is the most disclosures in one request: one batch
	// message of the bus.
	DefaultMaxLines = natsbus.MaxBatchEvents
)

// APIVersion is the version of the gateway's API, sent in the API-Version
// header of every answer (the Dutch API Design Rules) and in openapi.json.
const APIVersion = "1.0.0"

// The media types a POST may send.
const (
	mediaJSON      = "application/json"
	mediaJSONLines = "application/jsonl"
	mediaNDJSON    = "application/x-ndjson"
)

// Party is one party the gateway publishes for: its key (signing key and
// salt secret) and a JetStream context on a NATS connection with the
// party's credentials and inbox prefix (natsbus.InboxPrefix), as a party's
// own publisher would have.
type Party struct {
	Key *events.PartyKey
	JS  jetstream.JetStream
}

// Config configures a Gateway. Covenant, SubjectKey, Parties and Clients
// are required; the zero value of every other field is a sane default.
type Config struct {
	// Chain is the covenant chain checked against the pinned administrator
	// key (LoadCovenantChain); its latest version is the covenant in force,
	// which every line is checked against as ingest would. FollowCovenants
	// appends the versions the ledger logs later; the gateway owns the
	// chain from New on.
	Chain *events.Chain
	// SubjectKey is the pseudonym key K_v the gateway pseudonymises with;
	// the covenant must list its id. When the covenant pairs that id with a
	// VRF key (vrf_keys, issue 23), SubjectKey.VRF must be its secret (the
	// key file's vrf_secret) and every event is of schema v2 with the
	// subject's VRF output; otherwise events are v1 and a VRF secret is not
	// used.
	SubjectKey events.SubjectKey
	// Parties are the parties whose keys the gateway holds.
	Parties []Party
	// Clients maps the SHA-256 of each bearer token to its client; every
	// client's party must be one of Parties. It may be empty when
	// RequireClientCert is set.
	Clients map[[32]byte]Client
	// RequireClientCert makes every authenticated route require a client
	// certificate that the TLS listener verified (tls.Config with
	// RequireAndVerifyClientCert and the CA bundle of the accepted issuers,
	// PKIoverheid's for Digikoppeling). The certificate's subject
	// serialNumber is an OIN, and the covenant in force maps it to the
	// client's party (Party.OIN); a bearer token is then optional, and when
	// one is sent its party must be the certificate's. Without it a
	// verified certificate, if the listener asks for one, is still checked
	// against the token's party.
	RequireClientCert bool
	// ReceiptWait bounds how long a POST waits for receipts before it
	// answers 202; 0 means DefaultReceiptWait.
	ReceiptWait time.Duration
	// MaxBody is the largest request body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// MaxLines is the most disclosures in one request; 0 means
	// DefaultMaxLines.
	MaxLines int
	// Form serves the Dutch recording form at FormPath (form.go), where a
	// professional signs in with a token of Clients.
	Form bool
	// Now is the clock that occurred_at is checked against; nil means
	// time.Now.
	Now func() time.Time
	// Logger gets one line per request: client, party, counts, event ids
	// and problem codes; never a number or other content. nil: no logging.
	Logger *slog.Logger
}

// Gateway is the HTTP service. It is safe for concurrent use.
type Gateway struct {
	cfg Config
	// chainMu guards cfg.Chain, which only FollowCovenants changes;
	// requests read the version in force from cov without a lock.
	chainMu sync.Mutex
	cov     atomic.Pointer[events.Covenant]
	log     *slog.Logger
	parties map[string]*partyPublisher
	metrics metrics
}

// partyPublisher is one party's key and its publisher.
type partyPublisher struct {
	key *events.PartyKey
	js  jetstream.JetStream
	pub *natsbus.Publisher
}

// New checks cfg and makes a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Chain == nil {
		return nil, errors.New("gateway: a covenant is required")
	}
	cov := cfg.Chain.Latest().Covenant
	if !slices.Contains(cov.SubjectKeys, cfg.SubjectKey.ID) {
		return nil, fmt.Errorf("gateway: the covenant does not list pseudonym key %q (it lists %s)", cfg.SubjectKey.ID, strings.Join(cov.SubjectKeys, ", "))
	}
	if len(cfg.SubjectKey.Secret) != events.SubjectKeySize {
		return nil, fmt.Errorf("gateway: pseudonym key %q has %d bytes, want %d", cfg.SubjectKey.ID, len(cfg.SubjectKey.Secret), events.SubjectKeySize)
	}
	vrfPub, hasVRF := cov.VRFKey(cfg.SubjectKey.ID)
	switch {
	case hasVRF && cfg.SubjectKey.VRF == nil:
		return nil, fmt.Errorf("gateway: the covenant pairs pseudonym key %q with a VRF key; its key file needs the VRF secret (spoor covenant vrf-keygen)", cfg.SubjectKey.ID)
	case hasVRF && !cfg.SubjectKey.VRF.Public().Equal(vrfPub):
		return nil, fmt.Errorf("gateway: the VRF secret of pseudonym key %q is not the one whose public key the covenant lists", cfg.SubjectKey.ID)
	case !hasVRF:
		// The covenant decides whether events carry a VRF output: an output
		// under a key id without a VRF key would only earn a finding.
		cfg.SubjectKey.VRF = nil
	}
	if len(cfg.Parties) == 0 {
		return nil, errors.New("gateway: at least one party key is required")
	}
	if cfg.ReceiptWait <= 0 {
		cfg.ReceiptWait = DefaultReceiptWait
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxLines <= 0 {
		cfg.MaxLines = DefaultMaxLines
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, log: log, parties: map[string]*partyPublisher{}, metrics: newMetrics()}
	for _, p := range cfg.Parties {
		if p.Key == nil || p.JS == nil {
			return nil, errors.New("gateway: each party needs a key and a JetStream context")
		}
		if _, dup := g.parties[p.Key.Party]; dup {
			return nil, fmt.Errorf("gateway: party %s is given twice", p.Key.Party)
		}
		if _, ok := cov.Party(p.Key.Party); !ok {
			return nil, fmt.Errorf("gateway: party %s is not in covenant version %d", p.Key.Party, cov.Version)
		}
		pub, err := natsbus.NewPublisher(p.JS, p.Key, natsbus.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("gateway: party %s: %w", p.Key.Party, err)
		}
		g.parties[p.Key.Party] = &partyPublisher{key: p.Key, js: p.JS, pub: pub}
	}
	if len(cfg.Clients) == 0 && !cfg.RequireClientCert {
		return nil, errors.New("gateway: no clients (tokens) are configured, and client certificates are not required")
	}
	for _, c := range cfg.Clients {
		if _, ok := g.parties[c.Party]; !ok {
			return nil, fmt.Errorf("gateway: client %s is for party %s, whose key the gateway does not hold", c.Name, c.Party)
		}
	}
	g.cov.Store(cov)
	return g, nil
}

// covenant returns the covenant version in force.
func (g *Gateway) covenant() *events.Covenant { return g.cov.Load() }

// route is one route of the API: the pattern of http.ServeMux and its
// handler. OpenAPI's paths are checked against this list.
type route struct {
	pattern string
	authn   bool
	handle  func(w http.ResponseWriter, r *http.Request, c Client)
}

func (g *Gateway) routes() []route {
	return []route{
		{"POST /v1/disclosures", true, g.postDisclosures},
		{"POST /v1/traces", true, g.postTraces},
		{"GET /v1/disclosures/{id}", true, g.getDisclosure},
		{"GET /openapi.json", false, g.openAPI},
	}
}

// Handler returns the HTTP handler of the API. Every answer carries the
// API-Version header; every error is an application/problem+json.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range g.routes() {
		mux.Handle(rt.pattern, g.guard(rt))
		method, path, _ := strings.Cut(rt.pattern, " ")
		allowed[path] = append(allowed[path], method)
	}
	// The same paths without a method answer 405 as a problem (the mux's
	// own 405 is plain text); anything else is a 404 problem.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeProblem(w, newProblem(http.StatusMethodNotAllowed, ProblemMethodNotAllowed, "allowed: "+allow))
		})
	}
	if g.cfg.Form {
		mux.Handle(FormPath, newForm(g).handler())
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(http.StatusNotFound, ProblemNotFound, "see /openapi.json for the routes"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", APIVersion)
		mux.ServeHTTP(w, r)
	})
}

// guard authenticates a route's client before its handler runs.
func (g *Gateway) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.authn {
			rt.handle(w, r, Client{})
			return
		}
		c, p := g.authenticate(r)
		if p != nil {
			g.metrics.problem(p.Code)
			g.log.Info("refused client", "problem", p.Code, "oin", c.OIN)
			if p.Status == http.StatusUnauthorized && !g.cfg.RequireClientCert {
				w.Header().Set("WWW-Authenticate", `Bearer realm="spoor-gateway"`)
			}
			writeProblem(w, p)
			return
		}
		rt.handle(w, r, c)
	})
}

// authenticate finds the request's client: from the verified client
// certificate's OIN, from the bearer token, or from both when they agree.
// On a refusal the returned Client holds the certificate's OIN, if any, for
// the log line.
func (g *Gateway) authenticate(r *http.Request) (Client, *Problem) {
	var cert *Client
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		// The listener verified the chain against the CA bundle; what is
		// left is who the certificate names.
		oin := r.TLS.VerifiedChains[0][0].Subject.SerialNumber
		cov := g.covenant()
		party, ok := cov.PartyByOIN(oin)
		switch {
		case !events.ValidOIN(oin):
			return Client{}, newProblem(http.StatusForbidden, ProblemClientCertificate,
				"the client certificate's subject serialNumber is not an OIN (20 digits); a PKIoverheid certificate of the organisation carries its OIN there")
		case !ok:
			return Client{OIN: oin}, newProblem(http.StatusForbidden, ProblemClientCertificate,
				fmt.Sprintf("OIN %s of the client certificate is not the OIN of any party of covenant version %d", oin, cov.Version))
		case g.parties[party.ID] == nil:
			return Client{OIN: oin}, newProblem(http.StatusForbidden, ProblemClientCertificate,
				fmt.Sprintf("OIN %s is that of party %s, whose key this gateway does not hold", oin, party.ID))
		}
		cert = &Client{Name: "oin-" + oin, Party: party.ID, OIN: oin}
	} else if g.cfg.RequireClientCert {
		return Client{}, newProblem(http.StatusUnauthorized, ProblemClientCertificate,
			"this gateway requires mutual TLS: present the organisation's client certificate (PKIoverheid, its OIN in the subject serialNumber)")
	}
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if r.Header.Get("Authorization") == "" && cert != nil {
		return *cert, nil
	}
	c, known := g.cfg.Clients[TokenHash(tok)]
	if !bearer || tok == "" || !known {
		return Client{}, newProblem(http.StatusUnauthorized, ProblemUnauthorized, "send Authorization: Bearer <token> with a token of the gateway's tokens file")
	}
	if cert != nil {
		if c.Party != cert.Party {
			return *cert, newProblem(http.StatusForbidden, ProblemClientMismatch,
				fmt.Sprintf("the bearer token is for party %s, but the client certificate's OIN %s is that of party %s", c.Party, cert.OIN, cert.Party))
		}
		c.OIN = cert.OIN
	}
	return c, nil
}

//go:embed openapi.json
var openAPIDoc []byte

func (g *Gateway) openAPI(w http.ResponseWriter, r *http.Request, _ Client) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}

// Result is the gateway's answer about one disclosure: where it stands in
// the ledger, and for a committed one the receipt that proves it. Byte
// fields are standard base64 (JSON's encoding of bytes).
type Result struct {
	// Line is the line of the request (1 for a single JSON document).
	Line int `json:"line,omitempty"`
	// EventID is the id derived from the Idempotency-Key.
	EventID string `json:"event_id"`
	// Status is committed, pending, rejected or id_conflict (natsbus's
	// receipt statuses).
	Status natsbus.ReceiptStatus `json:"status"`
	// Reason is the ledger's reason code for rejected and id_conflict.
	Reason events.Reason `json:"reason,omitempty"`
	// EnvelopeSHA256 is the SHA-256 of the signed envelope, lower-case hex:
	// the receipt is about these bytes.
	EnvelopeSHA256 string `json:"envelope_sha256"`
	// Envelope is the signed DSSE envelope (it holds the pseudonym, never
	// the number), which with LeafRecord gives the leaf hash the proof
	// starts from. Only in the answer to a POST.
	Envelope []byte `json:"envelope,omitempty"`
	// LeafIndex, TreeSize, LeafRecord, InclusionProof and Checkpoint are
	// the ledger's receipt for a committed event (natsbus.Receipt);
	// verify them (package verifier) before relying on them.
	LeafIndex      *uint64  `json:"leaf_index,omitempty"`
	TreeSize       uint64   `json:"tree_size,omitempty"`
	LeafRecord     []byte   `json:"leaf_record,omitempty"`
	InclusionProof [][]byte `json:"inclusion_proof,omitempty"`
	Checkpoint     string   `json:"checkpoint,omitempty"`
	Unwitnessed    bool     `json:"unwitnessed,omitempty"`
	// Findings are the covenant rules the disclosure breaks under the
	// covenant version the gateway holds (events.Covenant.Check), as the
	// ledger records them with the event; the timing findings the ledger
	// adds when it records (recorded-late) are not among them. In a
	// status answer (GET) they are the ledger's stored findings from its
	// receipt, rule and field without a message.
	Findings []events.Finding `json:"findings,omitempty"`
	// StatusURL is where to ask again while the status is pending.
	StatusURL string `json:"status_url,omitempty"`
}

// BatchResult is the answer to a JSON Lines POST: one Result per line.
type BatchResult struct {
	Results []*Result `json:"results"`
}

// prepared is one line made ready to publish.
type prepared struct {
	line     int
	d        *events.Disclosure
	env      []byte
	hash     [32]byte
	findings []events.Finding
	result   *Result // set once the line's outcome is known
}

// refusedRules are covenant findings the gateway refuses instead of
// passing on: ids that are not in the covenant's vocabulary. A system picks
// them from a list, so an unknown one is a typing or mapping error that the
// client can fix and send again; the ledger would record the event with a
// finding, which a person must then clear with a correction. Findings that
// describe what happened (a recipient outside the covenant, consent
// missing, data not needed) are recorded, never refused: hiding a
// disclosure that took place would defeat the ledger.
var refusedRules = map[string]bool{
	events.RulePurposeUnknown:   true,
	events.RuleCategoryUnknown:  true,
	events.RuleGroundUnknown:    true,
	events.RuleExceptionUnknown: true,
	events.RuleStatuteUnknown:   true,
}

// postDisclosures is POST /v1/disclosures.
func (g *Gateway) postDisclosures(w http.ResponseWriter, r *http.Request, c Client) {
	party := g.parties[c.Party]
	log := g.log.With("client", c.Name, "party", c.Party)
	fail := func(p *Problem) {
		g.metrics.problem(p.Code)
		log.Info("refused", "problem", p.Code, "lines_at_fault", len(p.Errors), "event_id", p.EventID)
		writeProblem(w, p)
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > events.MaxIdempotencyKeyLen || !printableASCII(key) {
		fail(newProblem(http.StatusBadRequest, ProblemIdempotencyKeyMissing,
			fmt.Sprintf("send an Idempotency-Key header of 1 to %d printable ASCII characters; the same key with the same body is answered with the same event", events.MaxIdempotencyKeyLen)))
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	lines := false
	switch {
	case err != nil:
		fail(newProblem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "no valid Content-Type"))
		return
	case mt == mediaJSON:
	case mt == mediaJSONLines || mt == mediaNDJSON:
		lines = true
	default:
		fail(newProblem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "Content-Type must be application/json (one disclosure) or application/jsonl (JSON Lines)"))
		return
	}
	tooLarge := newProblem(http.StatusRequestEntityTooLarge, ProblemBodyTooLarge, fmt.Sprintf("the body may be at most %d bytes; send fewer lines per request", g.cfg.MaxBody))
	if r.ContentLength > g.cfg.MaxBody {
		fail(tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		fail(tooLarge)
		return
	case err != nil:
		fail(newProblem(http.StatusBadRequest, ProblemBadRequest, "couldn't read the body"))
		return
	}
	var ls []Line
	if lines {
		ls = SplitLines(body)
	} else {
		ls = []Line{{N: 1, Bytes: body}}
	}
	switch {
	case len(ls) == 0:
		fail(newProblem(http.StatusBadRequest, ProblemMalformedJSON, "the body holds no disclosure", &FieldError{Line: 1, Code: CodeMalformedJSON, Detail: "empty input"}))
		return
	case len(ls) > g.cfg.MaxLines:
		fail(newProblem(http.StatusRequestEntityTooLarge, ProblemTooManyLines, fmt.Sprintf("at most %d disclosures per request, this one has %d", g.cfg.MaxLines, len(ls))))
		return
	}
	ps, p := g.record(r.Context(), log, party, c, key, ls, lines)
	if p != nil {
		fail(p)
		return
	}
	g.answer(w, log, ps, lines)
}

// record prepares the lines (prepare), asks the ledger for receipts of
// those it may hold, publishes the rest and waits up to ReceiptWait for
// their receipts: every line of the answer has its result, or the problem
// says why nothing was published. The API and the recording form share it.
func (g *Gateway) record(ctx context.Context, log *slog.Logger, party *partyPublisher, c Client, key string, ls []Line, lines bool) ([]*prepared, *Problem) {
	ps, p := g.prepare(party, c, key, ls, lines)
	if p != nil {
		return nil, p
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ReceiptWait)
	defer cancel()
	todo, conflicts := g.lookup(ctx, party, c, ps)
	if len(conflicts) > 0 {
		errs := make([]*FieldError, len(conflicts))
		for i, pr := range conflicts {
			errs[i] = conflictError(pr.line, pr.result)
		}
		pb := newProblem(http.StatusUnprocessableEntity, ProblemIdempotencyConflict,
			"the ledger holds the event of this Idempotency-Key with another disclosure; the first one stands. Use a new key for a new disclosure; nothing of this request was published", errs...)
		if !lines {
			pb.EventID = ps[0].d.ID
		}
		return nil, pb
	}
	if err := g.publishAndWait(ctx, log, party, todo); err != nil {
		return nil, newProblem(http.StatusServiceUnavailable, ProblemBusUnavailable, "the bus did not acknowledge every disclosure; retrying with the same Idempotency-Key and body publishes each at most once")
	}
	return ps, nil
}

// lookup asks the ledger for the receipts of ps before anything is
// published: a retry of what the ledger holds gets its result from the
// receipt, and a line whose id the ledger holds with other bytes is a
// conflict (its result says id_conflict). todo are the lines to publish.
func (g *Gateway) lookup(ctx context.Context, party *partyPublisher, c Client, ps []*prepared) (todo, conflicts []*prepared) {
	receipts := make([]*natsbus.Receipt, len(ps))
	parallel.For(len(ps), receiptWorkers, 1, func(i int) {
		// An error leaves the receipt nil: the ledger did not answer.
		receipts[i], _ = natsbus.RequestReceipt(ctx, party.js.Conn(), c.Party, ps[i].d.ID, ps[i].hash)
	})
	for i, pr := range ps {
		rc := receipts[i]
		switch {
		case rc == nil:
			// The ledger did not answer: publish, and let the receipt tell.
			todo = append(todo, pr)
		case rc.Status == natsbus.ReceiptIDConflict:
			pr.result = g.result(pr, rc)
			conflicts = append(conflicts, pr)
		case rc.Status == natsbus.ReceiptPending:
			todo = append(todo, pr)
		default:
			pr.result = g.result(pr, rc)
		}
	}
	return todo, conflicts
}

// publishAndWait publishes todo and waits, until ctx ends, for each one's
// receipt: every line gets its result, pending when the wait ended first.
func (g *Gateway) publishAndWait(ctx context.Context, log *slog.Logger, party *partyPublisher, todo []*prepared) error {
	if err := g.publish(ctx, party, todo); err != nil {
		log.Warn("publish failed", "err", err, "lines", len(todo))
		return err
	}
	parallel.For(len(todo), receiptWorkers, 1, func(i int) {
		pr := todo[i]
		rc, err := waitReceipt(ctx, party, pr.d.ID, pr.hash)
		if err != nil {
			// Past the bound: the event is on the bus, the client asks later.
			rc = &natsbus.Receipt{EventID: pr.d.ID, Status: natsbus.ReceiptPending}
		}
		pr.result = g.result(pr, rc)
	})
	return nil
}

// receiptWorkers is how many receipt requests of one POST are in flight at
// once: each waits on a round trip to the ledger, not on a core.
const receiptWorkers = 32

// Receipt polling: the ledger commits within milliseconds of a publish,
// so the first retries come soon (natsbus's WaitReceipt starts at 50 ms,
// which alone would set a POST's latency); they back off so that a slow
// ledger is not flooded by the waiting requests.
const (
	receiptFirstRetry = 2 * time.Millisecond
	receiptMaxRetry   = 250 * time.Millisecond
)

// waitReceipt asks the ledger for the receipt of the envelope with hash
// under id until it is final or ctx ends.
func waitReceipt(ctx context.Context, party *partyPublisher, id string, hash [32]byte) (*natsbus.Receipt, error) {
	wait := receiptFirstRetry
	for {
		rc, err := natsbus.RequestReceipt(ctx, party.js.Conn(), party.key.Party, id, hash)
		if err == nil && rc.Status != natsbus.ReceiptPending {
			return rc, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("no receipt for event %s: %w", id, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, receiptMaxRetry)
	}
}

// prepare parses, pseudonymises, signs and checks every line; it returns
// the lines ready to publish or the problem naming every line at fault.
func (g *Gateway) prepare(party *partyPublisher, c Client, key string, ls []Line, lines bool) ([]*prepared, *Problem) {
	cov := g.covenant()
	now := g.cfg.Now()
	var ps []*prepared
	var errs []*FieldError
	status, code := http.StatusUnprocessableEntity, ProblemInvalidDisclosure
	worse := func(s int, c string) {
		// Precedence: another party (403) over malformed JSON (400) over
		// an invalid disclosure (422).
		rank := map[string]int{ProblemOtherParty: 3, ProblemMalformedJSON: 2, ProblemInvalidDisclosure: 1}
		if rank[c] > rank[code] {
			status, code = s, c
		}
	}
	// Each line is parsed, signed and checked on its own, spread over the
	// cores (a signature and its checks are most of a line's cost); the
	// outcomes are gathered in line order.
	type outcome struct {
		pr   *prepared
		errs []*FieldError
	}
	outs := make([]outcome, len(ls))
	parallel.For(len(ls), 0, 16, func(i int) {
		l := ls[i]
		in, err := ParseInput(l.N, l.Bytes)
		if err != nil {
			outs[i].errs = []*FieldError{err.(*FieldError)}
			return
		}
		lineKey := key
		if lines {
			// One header for the request; each line gets its own id.
			lineKey = key + "/" + strconv.Itoa(l.N)
		}
		id := events.KeyedEventID(party.key.SaltSecret, party.key.Party, lineKey)
		d, fes := in.Disclosure(l.N, party.key.Party, cov.Origin, id, g.cfg.SubjectKey)
		for _, fe := range fes {
			if fe.Code == CodeOtherParty && c.OIN != "" {
				// Name the mismatch by what the client proved: its certificate.
				fe.Detail = fmt.Sprintf("the client certificate's OIN %s is that of party %s; a line may name only that party as discloser", c.OIN, c.Party)
			}
		}
		if len(fes) > 0 {
			outs[i].errs = fes
			return
		}
		outs[i].pr, outs[i].errs = g.check(l.N, cov, party.key, d, now)
	})
	for _, o := range outs {
		for _, fe := range o.errs {
			switch fe.Code {
			case CodeMalformedJSON:
				worse(http.StatusBadRequest, ProblemMalformedJSON)
			case CodeOtherParty:
				worse(http.StatusForbidden, ProblemOtherParty)
			}
		}
		errs = append(errs, o.errs...)
		if o.pr != nil {
			ps = append(ps, o.pr)
		}
	}
	if len(errs) > 0 {
		return nil, newProblem(status, code, fmt.Sprintf("%d of %d lines are at fault; nothing of this request was published", countLines(errs), len(ls)), errs...)
	}
	return ps, nil
}

// check signs d and checks it as ingest will: events.Open against the
// covenant in force (form, validation, origin, the key in force at
// occurred_at, the signature), occurred_at not in the future, and no id
// that the covenant's vocabulary lacks (refusedRules).
func (g *Gateway) check(line int, cov *events.Covenant, key *events.PartyKey, d *events.Disclosure, now time.Time) (*prepared, []*FieldError) {
	var errs []*FieldError
	events.Seal(d, key)
	env, err := events.Sign(d, key)
	var ve events.ValidationErrors
	switch {
	case errors.As(err, &ve):
		for _, e := range ve {
			errs = append(errs, &FieldError{Line: line, Field: e.Field, Code: CodeInvalid, Detail: e.Reason})
		}
		return nil, errs
	case err != nil:
		return nil, []*FieldError{{Line: line, Code: CodeInvalid, Detail: err.Error()}}
	}
	if err := openUnsigned(env, cov); err != nil {
		var re *events.RejectError
		if !errors.As(err, &re) {
			return nil, []*FieldError{{Line: line, Code: CodeInvalid, Detail: err.Error()}}
		}
		return nil, []*FieldError{{Line: line, Field: reasonField(re.Reason), Code: string(re.Reason), Detail: re.Detail()}}
	}
	if err := events.CheckOccurredInFuture(d, now, 0); err != nil {
		var re *events.RejectError
		errors.As(err, &re)
		return nil, []*FieldError{{Line: line, Field: "occurred_at", Code: string(events.ReasonOccurredInFuture), Detail: re.Detail()}}
	}
	findings := cov.Check(d)
	for _, f := range findings {
		if refusedRules[f.Rule] {
			errs = append(errs, &FieldError{Line: line, Field: f.Field, Code: f.Rule, Detail: f.Message})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &prepared{line: line, d: d, env: env, hash: sha256.Sum256(env), findings: findings}, nil
}

// openUnsigned makes every check of events.Open on an envelope the
// gateway has just signed, but the signature's: the strict profile, the
// canonical payload decoded afresh from the bytes, the validation, the
// origin, and the discloser's key in force at occurred_at and not revoked
// (the key id is the gateway's own key's, so the covenant's key in force is
// that key). An Ed25519 signature made with that key verifies; checking it
// again cost a fifth of the gateway's CPU per disclosure.
func openUnsigned(env []byte, cov *events.Covenant) error {
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return err
	}
	d, err := events.DecodeDisclosure(e.Payload)
	if err != nil {
		return &events.RejectError{Reason: events.ReasonMalformed, Err: err}
	}
	return events.CheckUnsigned(e, d, cov.Origin, cov)
}

// reasonField names the field a refusal by events.Open is about.
func reasonField(r events.Reason) string {
	switch r {
	case events.ReasonUnknownParty, events.ReasonKeyNotInForce, events.ReasonKeyRevoked:
		return "discloser"
	case events.ReasonWrongOrigin:
		return "origin"
	case events.ReasonOccurredInFuture:
		return "occurred_at"
	}
	return ""
}

// publish sends the lines as batch messages and waits for the bus's acks.
func (g *Gateway) publish(ctx context.Context, party *partyPublisher, ps []*prepared) error {
	if len(ps) == 0 {
		return nil
	}
	var pending []*natsbus.PendingPublish
	send := func(group []*prepared) error {
		ids := make([]string, len(group))
		envs := make([][]byte, len(group))
		for i, pr := range group {
			ids[i], envs[i] = pr.d.ID, pr.env
		}
		// The envelopes check() signed and checked: nothing is signed twice.
		pp, err := party.pub.PublishSignedAsync(ctx, ids, envs)
		if err != nil {
			return err
		}
		pending = append(pending, pp)
		return nil
	}
	for chunk := range slices.Chunk(ps, natsbus.MaxBatchEvents) {
		if err := natsbus.SplitWhenTooLarge(chunk, send); err != nil {
			return fmt.Errorf("couldn't publish: %w", err)
		}
	}
	for _, pp := range pending {
		if _, err := pp.Wait(ctx); err != nil {
			return fmt.Errorf("couldn't publish: %w", err)
		}
	}
	g.metrics.published.Add(float64(len(ps)))
	return nil
}

// result turns a receipt into a line's Result.
func (g *Gateway) result(pr *prepared, rc *natsbus.Receipt) *Result {
	res := &Result{Line: pr.line, EventID: pr.d.ID, Status: rc.Status, Reason: rc.Reason,
		EnvelopeSHA256: hex.EncodeToString(pr.hash[:]), Envelope: pr.env, Findings: pr.findings}
	fillReceipt(res, rc)
	if res.Status == natsbus.ReceiptPending {
		res.StatusURL = statusURL(pr.d.ID, pr.hash)
	}
	return res
}

// fillReceipt copies a receipt's proof into res.
func fillReceipt(res *Result, rc *natsbus.Receipt) {
	if rc.Status == natsbus.ReceiptCommitted || rc.Status == natsbus.ReceiptIDConflict {
		idx := rc.LeafIndex
		res.LeafIndex = &idx
	}
	if rc.Status == natsbus.ReceiptCommitted {
		res.TreeSize, res.LeafRecord, res.InclusionProof = rc.TreeSize, rc.LeafRecord, rc.InclusionProof
		res.Checkpoint, res.Unwitnessed = string(rc.Checkpoint), rc.Unwitnessed
		// A status answer has no findings of the gateway's own: the
		// ledger's receipt carries those it stored (rule and field).
		if len(res.Findings) == 0 {
			for _, f := range rc.Findings {
				res.Findings = append(res.Findings, events.Finding{Rule: f.Rule, Field: f.Field})
			}
		}
	}
}

// statusURL is the path where a pending event's status is asked again.
func statusURL(id string, hash [32]byte) string {
	return "/v1/disclosures/" + id + "?sha256=" + hex.EncodeToString(hash[:])
}

// conflictError names a line whose id the ledger holds with other bytes.
func conflictError(line int, res *Result) *FieldError {
	var leaf uint64
	if res.LeafIndex != nil {
		leaf = *res.LeafIndex
	}
	return &FieldError{Line: line, Code: ProblemIdempotencyConflict,
		Detail: fmt.Sprintf("event %s is logged at leaf %d with another disclosure", res.EventID, leaf)}
}

// answer writes the results: 200 when every line's outcome is final, 202
// (with Location for a single disclosure) when some are still pending. A
// single disclosure that the ledger refused, or whose id it holds with
// other bytes, is a problem.
func (g *Gateway) answer(w http.ResponseWriter, log *slog.Logger, ps []*prepared, lines bool) {
	counts := map[natsbus.ReceiptStatus]int{}
	status := http.StatusOK
	for _, pr := range ps {
		counts[pr.result.Status]++
		g.metrics.results.WithLabelValues(string(pr.result.Status)).Inc()
		if pr.result.Status == natsbus.ReceiptPending {
			status = http.StatusAccepted
		}
	}
	log.Info("answered", "lines", len(ps), "committed", counts[natsbus.ReceiptCommitted], "pending", counts[natsbus.ReceiptPending],
		"rejected", counts[natsbus.ReceiptRejected], "id_conflict", counts[natsbus.ReceiptIDConflict])
	if !lines {
		res := ps[0].result
		switch res.Status {
		case natsbus.ReceiptRejected:
			p := newProblem(http.StatusUnprocessableEntity, ProblemLedgerRejected, "the ledger refused the disclosure: "+string(res.Reason),
				&FieldError{Line: 1, Field: reasonField(res.Reason), Code: string(res.Reason), Detail: "refused by the ledger"})
			p.EventID, p.Reason = res.EventID, string(res.Reason)
			g.metrics.problem(p.Code)
			writeProblem(w, p)
			return
		case natsbus.ReceiptIDConflict:
			p := newProblem(http.StatusUnprocessableEntity, ProblemIdempotencyConflict,
				"the ledger holds the event of this Idempotency-Key with another disclosure; the first one stands",
				&FieldError{Line: 1, Code: ProblemIdempotencyConflict, Detail: "another disclosure was logged under this key first"})
			p.EventID = res.EventID
			g.metrics.problem(p.Code)
			writeProblem(w, p)
			return
		case natsbus.ReceiptPending:
			w.Header().Set("Location", res.StatusURL)
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, status, res)
		return
	}
	out := &BatchResult{Results: make([]*Result, len(ps))}
	for i, pr := range ps {
		out.Results[i] = pr.result
	}
	if status == http.StatusAccepted {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, out)
}

// getDisclosure is GET /v1/disclosures/{id}?sha256=HEX: the receipt of the
// client's party's event with that envelope hash, asked of the ledger.
func (g *Gateway) getDisclosure(w http.ResponseWriter, r *http.Request, c Client) {
	id := r.PathValue("id")
	if !events.ValidEventID(id) {
		writeProblem(w, newProblem(http.StatusBadRequest, ProblemBadRequest, "the path's id is not an event id (a lower-case UUIDv7)"))
		return
	}
	h, err := natsbus.ParseSHA256(r.URL.Query().Get("sha256"))
	if err != nil {
		writeProblem(w, newProblem(http.StatusBadRequest, ProblemBadRequest, "the query needs sha256, the envelope_sha256 of the answer to the POST"))
		return
	}
	party := g.parties[c.Party]
	rc, err := natsbus.RequestReceipt(r.Context(), party.js.Conn(), c.Party, id, h)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, newProblem(http.StatusServiceUnavailable, ProblemLedgerUnavailable, "the ledger's receipt service did not answer"))
		return
	}
	res := &Result{EventID: id, Status: rc.Status, Reason: rc.Reason, EnvelopeSHA256: hex.EncodeToString(h[:])}
	fillReceipt(res, rc)
	status := http.StatusOK
	if rc.Status == natsbus.ReceiptPending {
		res.StatusURL = statusURL(id, h)
		status = http.StatusAccepted
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// countLines counts the distinct lines among errs.
func countLines(errs []*FieldError) int {
	seen := map[int]bool{}
	for _, e := range errs {
		seen[e.Line] = true
	}
	return len(seen)
}

// metrics are the gateway's collectors.
type metrics struct {
	problems  *prometheus.CounterVec
	results   *prometheus.CounterVec
	published prometheus.Counter
	// The OTLP intake's spans: ignored (no disclosure) by kind, refused by
	// reason code, committed.
	spansIgnored   *prometheus.CounterVec
	spansRefused   *prometheus.CounterVec
	spansCommitted prometheus.Counter
}

func newMetrics() metrics {
	return metrics{
		problems: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "spoor", Subsystem: "gateway", Name: "problems_total",
			Help: "Requests answered with a problem, by problem code."}, []string{"code"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "spoor", Subsystem: "gateway", Name: "results_total",
			Help: "Disclosures answered, by receipt status (committed, pending, rejected, id_conflict)."}, []string{"status"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "spoor", Subsystem: "gateway", Name: "published_total",
			Help: "Disclosures published on the bus (a retry of a committed one is not published again)."}),
		spansIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "spoor", Subsystem: "gateway", Name: "otlp_spans_ignored_total",
			Help: "OTLP spans that claim no disclosure, by kind (not_ldv: no dpl.core attribute; not_disclosure: an LDV record without dpl.spoor attributes)."}, []string{"kind"}),
		spansRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "spoor", Subsystem: "gateway", Name: "otlp_spans_refused_total",
			Help: "OTLP spans claiming a disclosure that were refused in partial_success, by reason code."}, []string{"reason"}),
		spansCommitted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "spoor", Subsystem: "gateway", Name: "otlp_spans_committed_total",
			Help: "OTLP spans recorded as disclosures and committed by the ledger (a re-export of a committed span counts again)."}),
	}
}

func (m metrics) problem(code string) { m.problems.WithLabelValues(code).Inc() }

// Metrics returns the gateway's collectors and its publishers', for the
// caller to register.
func (g *Gateway) Metrics() []prometheus.Collector {
	out := []prometheus.Collector{g.metrics.problems, g.metrics.results, g.metrics.published,
		g.metrics.spansIgnored, g.metrics.spansRefused, g.metrics.spansCommitted}
	for _, p := range g.parties {
		out = append(out, p.pub.Metrics()...)
	}
	return out
}
