// Package httpapi serves a ledger over HTTP: the public C2SP tlog-tiles
// read API (checkpoint, hash tiles, entry bundles of leaf records, which
// hold only hashes and times), proofs, event status, and the role-gated
// reads of stored envelopes for the FG.
//
// Requests flow one way: a handler parses and bounds its parameters, reads
// from the ledger (which reads the store), and writes bytes. Nothing here
// writes to the ledger.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
)

// Role is what a bearer token may do.
type Role string

// The HTTP roles. Public needs no token.
const (
	RolePublic Role = "public"
	RoleParty  Role = "party"
	RoleFG     Role = "fg"
	RoleDesk   Role = "desk"
)

// Principal is who a token belongs to.
type Principal struct {
	Role Role
	// Party is the party a RoleParty token speaks for.
	Party string
	// Name identifies the token holder in logs (never personal data).
	Name string
}

// Config configures the handler.
type Config struct {
	Ledger *ledger.Ledger
	// Answers runs the desk's workflows (access requests, erasure
	// proposals, the desk scope, bundles) on Ledger; nil makes one with
	// answer.Config defaults, whose bundles then carry no verifier keys.
	// Share one Service per Ledger: its locks serialise the decisions.
	Answers *answer.Service
	// Tokens maps the SHA-256 of each bearer token to its principal (see
	// TokenHash); the server never holds the tokens themselves.
	Tokens map[[32]byte]Principal
	// AccessLimit is how many access requests (register and release) one
	// desk user may make per minute; 0 means 30.
	AccessLimit int
	// Logger; nil discards.
	Logger *slog.Logger
	// Gatherer serves /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Healthy reports readiness beyond the ledger itself (NATS connected,
	// ingest running); nil means always.
	Healthy func() error
	// Witnessing reports the witnessing loop's health
	// (witnessing.Witnesser.Health): an error makes /healthz answer
	// "degraded" (still 200: the ledger takes events and serves reads
	// while witnesses are away); nil means no witnessing.
	Witnessing func() error
}

// Server is the HTTP handler.
type Server struct {
	cfg Config
	l   *ledger.Ledger
	a   *answer.Service
	log *slog.Logger
	mux *http.ServeMux
	// routes are every endpoint, each with the roles it admits (New).
	routes []Route

	limitMu sync.Mutex
	limits  map[string]*rate.Limiter // per desk user
}

// New returns the handler for cfg.
func New(cfg Config) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AccessLimit <= 0 {
		cfg.AccessLimit = 30
	}
	if cfg.Answers == nil {
		cfg.Answers = answer.New(answer.Config{Ledger: cfg.Ledger})
	}
	s := &Server{cfg: cfg, l: cfg.Ledger, a: cfg.Answers, log: logger, mux: http.NewServeMux(), limits: map[string]*rate.Limiter{}}
	anyone := []Role{}
	s.routes = []Route{
		{"GET /checkpoint", anyone, false, s.checkpoint},
		{"GET /tile/", anyone, false, s.tile},
		{"GET /v1/proof/inclusion", anyone, false, s.inclusion},
		{"GET /v1/proof/consistency", anyone, false, s.consistency},
		{"GET /v1/events/{id}/status", anyone, false, s.status},
		{"GET /v1/events/{id}", []Role{RoleFG, RoleParty}, false, s.event},
		{"GET /v1/entries", []Role{RoleFG}, false, s.entries},
		{"GET /v1/checkpoints", []Role{RoleFG}, false, s.checkpoints},
		{"GET /v1/witnessed-checkpoints", []Role{RoleFG}, false, s.witnessedCheckpoints},
		{"GET /v1/covenants", anyone, false, s.covenants},
		{"GET /v1/index/lists", []Role{RoleFG}, false, s.indexLists},
		{"POST /v1/index/map-keys", []Role{RoleFG}, false, s.indexMapKeys},
		{"GET /healthz", anyone, false, s.healthz},
		{"POST /v1/inzage", []Role{RoleDesk}, true, s.inzageRegister},
		{"GET /v1/inzage", []Role{RoleDesk}, true, s.inzageList},
		{"GET /v1/inzage/{id}", []Role{RoleDesk}, true, s.inzageGet},
		{"POST /v1/inzage/{id}/release", []Role{RoleDesk}, true, s.inzageRelease},
		{"GET /v1/inzage/{id}/bundle", []Role{RoleDesk}, true, s.inzageBundle},
		{"GET /v1/inzage/{id}/preview", []Role{RoleDesk}, true, s.inzagePreview},
		{"POST /v1/erasures", []Role{RoleDesk}, true, s.erasurePropose},
		{"GET /v1/erasures", []Role{RoleDesk, RoleFG}, false, s.erasureList},
		{"GET /v1/erasures/{id}", []Role{RoleDesk, RoleFG}, false, s.erasureGet},
		{"POST /v1/erasures/{id}/confirm", []Role{RoleDesk}, true, s.erasureConfirm},
		{"POST /v1/erasures/{id}/withdraw", []Role{RoleDesk}, true, s.erasureWithdraw},
		{"POST /processing-activities", []Role{RoleFG, RoleDesk}, false, s.processingActivities},
	}
	if cfg.Gatherer != nil {
		s.routes = append(s.routes, Route{"GET /metrics", anyone, false, promhttpHandler(cfg.Gatherer).ServeHTTP})
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Pattern, s.guard(rt))
	}
	return s
}

// Route is one endpoint of the API: its pattern, who may call it, and its
// handler. Every route is registered through guard, the one place that
// authenticates the caller, checks its role and, for desk routes, its
// scope; a handler finds the caller with callerOf.
type Route struct {
	// Pattern is the http.ServeMux pattern ("GET /v1/entries").
	Pattern string
	// Roles may call it; empty means anyone, with or without a token (a
	// token that is given must still be valid).
	Roles []Role
	// Active is true for routes that write (an inzage request, an
	// erasure): only the active ledger takes them, never a standby.
	Active  bool
	handler http.HandlerFunc
}

// Routes lists the registered routes, so that a test (and the route table
// in docs/security.md) can hold every one of them to an expected status.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// Caller is who sends a request, as guard established it.
type Caller struct {
	Principal
	// Credential is the SHA-256 of the bearer token (hex), empty for the
	// public: what tells two users apart, whatever their names.
	Credential string
	// Scope is whose disclosures a desk user answers for (desk only).
	Scope verifier.BundleScope
}

type callerKey struct{}

// callerOf returns the caller of a request that guard let through.
func callerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}

// guard authorises a request for rt, failing closed. A standby refuses the
// active ledger's routes before anything else (503, whoever asks). Then: a
// token that is given
// must be known (401 otherwise, on public routes too); a route with roles
// refuses the public (401) and every other role (403); a desk user's scope
// comes from answer.Service.DeskScope, and a desk user without one is refused on
// every desk route (403), never given a wider one.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Active && s.l.Standby() {
			// Inzage requests and their releases, and erasure proposals,
			// are kept in the store outside the log, and erasures are
			// sequenced: none of them may happen on a standby, whose
			// store only follows the active ledger's (SPOOR_LOG). A client
			// (or a load balancer that sends to every replica) learns to
			// go to the active one instead.
			w.Header().Set("Retry-After", "1")
			s.fail(w, r, http.StatusServiceUnavailable, "standby", "this ledger is a standby that only serves reads; send inzage requests and erasures to the active ledger")
			return
		}
		c, ok := s.authenticate(r)
		if !ok {
			// Refused on every route, the public ones too: served as
			// anonymous, a client would not learn that its token is
			// wrong, and a guesser could probe tokens on routes that log
			// no refusal.
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			s.fail(w, r, http.StatusUnauthorized, "unauthorized", "unknown or malformed bearer token")
			return
		}
		if len(rt.Roles) > 0 && !slices.Contains(rt.Roles, c.Role) {
			if c.Role == RolePublic {
				s.fail(w, r, http.StatusUnauthorized, "unauthorized", "this endpoint needs a bearer token")
			} else {
				s.fail(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not use this endpoint", c.Role))
			}
			return
		}
		if c.Role == RoleDesk && slices.Contains(rt.Roles, RoleDesk) {
			scope, err := s.a.DeskScope(c.Party)
			if err != nil {
				s.fail(w, r, http.StatusForbidden, "no_scope", "this desk user answers for no party of the covenant (a desk user needs a party of the covenant, or a covenant with a central desk)")
				return
			}
			c.Scope = scope
		}
		rt.handler(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// apiError is the JSON error body: a code callers branch on and a message.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiError{Code: code, Message: msg})
}

func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ledger.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "not_found", "not found")
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, ledger.ErrNotWitnessed) {
		w.Header().Set("Retry-After", "2")
		s.fail(w, r, http.StatusServiceUnavailable, "not_witnessed",
			"no checkpoint cosigned by the witness policy's quorum covers this yet; try again shortly")
		return
	}
	s.log.Error("http read failed", "path", r.URL.Path, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "internal", "internal error")
}

func writeJSON(w http.ResponseWriter, v any) {
	// Encode first: a value that cannot be encoded must be a 500, not an
	// empty 200.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	w.Header().Set("Cache-Control", "no-store")
	if err := enc.Encode(v); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"code":"internal","message":"a stored entry could not be encoded; run spoor audit"}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

// authenticate returns the caller of the request's bearer token, or the
// public without one. A wrong or malformed token is an error, never public
// access.
func (s *Server) authenticate(r *http.Request) (Caller, bool) {
	h, given := r.Header["Authorization"]
	if !given {
		return Caller{Principal: Principal{Role: RolePublic}}, true
	}
	if len(h) != 1 {
		return Caller{}, false
	}
	tok, ok := strings.CutPrefix(h[0], "Bearer ")
	if !ok || tok == "" {
		return Caller{}, false
	}
	th := TokenHash(tok)
	p, ok := s.cfg.Tokens[th]
	if !ok || p.Role == RolePublic || p.Role == "" {
		return Caller{}, false
	}
	return Caller{Principal: p, Credential: hex.EncodeToString(th[:])}, true
}

// TokenHash is the SHA-256 of a bearer token, the key of Config.Tokens.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// checkpoint serves the public head (ledger.PublicHead): with a witness
// policy in force the newest checkpoint its witnesses cosigned, or 503
// until there is one; fail-open, the signed head marked as not witnessed.
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	h, witnessed := s.l.PublicHead()
	if h == nil {
		if s.l.Head() != nil {
			w.Header().Set("Retry-After", "1")
			s.fail(w, r, http.StatusServiceUnavailable, "not_witnessed", "no checkpoint has been cosigned by the witness policy's quorum yet")
			return
		}
		s.fail(w, r, http.StatusServiceUnavailable, "no_checkpoint", "the log has no checkpoint yet")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if p, err := s.l.WitnessPolicy(); p != nil || err != nil {
		w.Header().Set(WitnessedHeader, strconv.FormatBool(witnessed))
	}
	_, _ = w.Write(h.Note)
}

// WitnessedHeader says, on /checkpoint under a witness policy, whether the
// checkpoint served met the policy's quorum ("true") or is the signed head
// of a ledger running fail-open ("false").
const WitnessedHeader = "Spoor-Witnessed"

func (s *Server) tile(w http.ResponseWriter, r *http.Request) {
	level, n, width, entries, err := verifier.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_tile_path", err.Error())
		return
	}
	var data []byte
	if entries {
		data, err = s.l.EntryBundle(r.Context(), n, width)
	} else {
		data, err = s.l.Tile(r.Context(), level, n, width)
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if width == 256 {
		// A full tile never changes.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	_, _ = w.Write(data)
}

func parseUint(r *http.Request, name string) (uint64, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, true, fmt.Errorf("parameter %s must be a non-negative integer", name)
	}
	return n, true, nil
}

// InclusionResponse is the body of /v1/proof/inclusion.
type InclusionResponse struct {
	Index      uint64   `json:"index"`
	TreeSize   uint64   `json:"tree_size"`
	LeafRecord []byte   `json:"leaf_record"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint,omitempty"`
}

func (s *Server) inclusion(w http.ResponseWriter, r *http.Request) {
	head := s.l.Head()
	if head == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "no_checkpoint", "the log has no checkpoint yet")
		return
	}
	index, hasIndex, err := parseUint(r, "index")
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
		return
	}
	if id := r.URL.Query().Get("event_id"); id != "" {
		if hasIndex {
			s.fail(w, r, http.StatusBadRequest, "bad_parameter", "give index or event_id, not both")
			return
		}
		if !events.ValidEventID(id) {
			s.fail(w, r, http.StatusBadRequest, "bad_parameter", "event_id must be a lower-case UUIDv7")
			return
		}
		// Event ids are per party: by id, the envelope's hash says which
		// event (a party's token may name its own without it).
		p := callerOf(r).Principal
		h, hasHash, err := parseSHA256(r)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
			return
		}
		switch {
		case hasHash:
			e, err := s.findBytes(r.Context(), id, h)
			if err != nil {
				s.failErr(w, r, err)
				return
			}
			index = e.Index
		case p.Role == RoleParty:
			index, err = s.l.LookupEvent(r.Context(), p.Party, id)
			if err != nil {
				s.failErr(w, r, err)
				return
			}
		default:
			s.fail(w, r, http.StatusBadRequest, "bad_parameter", "with event_id give sha256, the SHA-256 of the envelope in lower-case hex")
			return
		}
		hasIndex = true
	}
	if !hasIndex {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", "give index or event_id")
		return
	}
	size, hasSize, err := parseUint(r, "size")
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
		return
	}
	resp := InclusionResponse{Index: index, TreeSize: size}
	if !hasSize {
		// The witnessed checkpoint once one covers the leaf (as receipts).
		cover, _, err := s.l.HeadCovering(index)
		if err != nil {
			cover = head
		}
		resp.TreeSize = cover.Size
		resp.Checkpoint = string(cover.Note)
	}
	if index >= resp.TreeSize || resp.TreeSize > head.Size {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", fmt.Sprintf("need index < size <= %d", head.Size))
		return
	}
	resp.Proof, err = s.l.InclusionProof(r.Context(), index, resp.TreeSize)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	resp.LeafRecord, err = s.l.LeafRecordBytes(r.Context(), index)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, resp)
}

// ConsistencyResponse is the body of /v1/proof/consistency.
type ConsistencyResponse struct {
	OldSize uint64   `json:"old_size"`
	NewSize uint64   `json:"new_size"`
	Proof   [][]byte `json:"proof"`
}

func (s *Server) consistency(w http.ResponseWriter, r *http.Request) {
	head := s.l.Head()
	if head == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "no_checkpoint", "the log has no checkpoint yet")
		return
	}
	oldSize, ok1, err1 := parseUint(r, "old")
	newSize, ok2, err2 := parseUint(r, "new")
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
		return
	}
	if !ok1 {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", "give old (and optionally new) tree sizes")
		return
	}
	if !ok2 {
		newSize = head.Size
	}
	if oldSize == 0 || oldSize > newSize || newSize > head.Size {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", fmt.Sprintf("need 0 < old <= new <= %d", head.Size))
		return
	}
	p, err := s.l.ConsistencyProof(r.Context(), oldSize, newSize)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, ConsistencyResponse{OldSize: oldSize, NewSize: newSize, Proof: p})
}

// StatusResponse is the body of /v1/events/<id>/status.
type StatusResponse struct {
	EventID string `json:"event_id"`
	// Status is committed, rejected, id_conflict (other bytes are logged
	// under the party's id) or unknown.
	Status string `json:"status"`
	// LeafIndex is the event's leaf when committed; with id_conflict, for
	// a party's own id, the leaf of the bytes logged first.
	LeafIndex *uint64       `json:"leaf_index,omitempty"`
	Reason    events.Reason `json:"reason,omitempty"`
	// Message explains a refusal, to the party whose event it is only.
	Message string     `json:"message,omitempty"`
	At      *time.Time `json:"at,omitempty"`
}

// The statuses of StatusResponse.
const (
	statusCommitted  = "committed"
	statusRejected   = "rejected"
	statusIDConflict = "id_conflict"
	statusUnknown    = "unknown"
)

// status answers where an event stands. A status is about bytes, and event
// ids are per party: without a party's token the request must carry
// ?sha256= (the SHA-256 of the envelope, which only those who hold the
// bytes know) and the answer is the status and a reason code, nothing
// more. A party's token may ask about the party's own ids without the
// hash, and also gets the leaf of conflicting bytes and the message of a
// refusal; another party's events under the same id are never seen.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	p := callerOf(r).Principal
	id := r.PathValue("id")
	if !events.ValidEventID(id) {
		s.fail(w, r, http.StatusBadRequest, "bad_event_id", "event id must be a lower-case UUIDv7")
		return
	}
	h, hasHash, err := parseSHA256(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
		return
	}
	var resp *StatusResponse
	switch {
	case p.Role == RoleParty:
		resp, err = s.partyStatus(r.Context(), p.Party, id, h, hasHash)
	case hasHash:
		resp, err = s.bytesStatus(r.Context(), id, h)
	default:
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", "give sha256, the SHA-256 of the envelope in lower-case hex (a party's token may ask about its own ids without it)")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, resp)
}

// partyStatus is the status of party's own event id, for those bytes when
// hasHash.
func (s *Server) partyStatus(ctx context.Context, party, id string, h [32]byte, hasHash bool) (*StatusResponse, error) {
	resp := &StatusResponse{EventID: id, Status: statusUnknown}
	e, err := s.l.FindEvent(ctx, party, id)
	switch {
	case err == nil:
		resp.Status, resp.LeafIndex = statusCommitted, &e.Index
		if hasHash && e.Hash != h {
			resp.Status, resp.Reason = statusIDConflict, events.ReasonIDConflict
			return resp, nil
		}
		if rec, err := s.l.LeafRecord(ctx, e.Index); err == nil {
			t := rec.IntegratedAt
			resp.At = &t
		}
		return resp, nil
	case !errors.Is(err, ledger.ErrNotFound):
		return nil, err
	}
	rej, err := s.l.Rejected(ctx, party, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return resp, nil
	case err != nil:
		return nil, err
	case hasHash && rej.SHA256 != "" && rej.SHA256 != hex.EncodeToString(h[:]):
		// Other bytes under the id were refused; these are not known.
		return resp, nil
	}
	resp.Status, resp.Reason, resp.Message, resp.At = statusRejected, rej.Reason, rej.Message, &rej.At
	if rej.Reason == events.ReasonIDConflict {
		resp.Status = statusIDConflict
	}
	return resp, nil
}

// bytesStatus is the status of the envelope with SHA-256 h under id, for
// anyone: the status and a reason code only.
func (s *Server) bytesStatus(ctx context.Context, id string, h [32]byte) (*StatusResponse, error) {
	resp := &StatusResponse{EventID: id, Status: statusUnknown}
	e, err := s.findBytes(ctx, id, h)
	switch {
	case err == nil:
		resp.Status, resp.LeafIndex = statusCommitted, &e.Index
		if rec, err := s.l.LeafRecord(ctx, e.Index); err == nil {
			t := rec.IntegratedAt
			resp.At = &t
		}
		return resp, nil
	case !errors.Is(err, ledger.ErrNotFound):
		return nil, err
	}
	rejs, err := s.l.RejectionsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	want := hex.EncodeToString(h[:])
	for _, rej := range rejs {
		if rej.SHA256 == want {
			resp.Status, resp.Reason = statusRejected, rej.Reason
			if rej.Reason == events.ReasonIDConflict {
				resp.Status = statusIDConflict
			}
			return resp, nil
		}
	}
	return resp, nil
}

// findBytes returns the logged event under id whose envelope hashes to h,
// of whichever party; ErrNotFound when there is none.
func (s *Server) findBytes(ctx context.Context, id string, h [32]byte) (ledger.LoggedEvent, error) {
	es, err := s.l.EventsWithID(ctx, id)
	if err != nil {
		return ledger.LoggedEvent{}, err
	}
	for _, e := range es {
		if e.Hash == h {
			return e, nil
		}
	}
	return ledger.LoggedEvent{}, fmt.Errorf("no event with those bytes: %w", ledger.ErrNotFound)
}

// parseSHA256 reads the sha256 parameter: the SHA-256 of an envelope, in
// lower-case hex. The error quotes nothing of what was given.
func parseSHA256(r *http.Request) ([32]byte, bool, error) {
	var h [32]byte
	v := r.URL.Query().Get("sha256")
	if v == "" {
		return h, false, nil
	}
	if len(v) != 64 || strings.ToLower(v) != v {
		return h, true, errors.New("parameter sha256 must be 64 lower-case hex characters")
	}
	if _, err := hex.Decode(h[:], []byte(v)); err != nil {
		return h, true, errors.New("parameter sha256 must be 64 lower-case hex characters")
	}
	return h, true, nil
}

// EntryResponse is one stored entry as the FG reads it; the format is
// the verifier's, so that audit.HTTPSource reads what this server writes.
type EntryResponse = verifier.EntryResponse

func (s *Server) loadEntry(ctx context.Context, idx uint64) (*EntryResponse, error) {
	recBytes, err := s.l.LeafRecordBytes(ctx, idx)
	if err != nil {
		return nil, err
	}
	rec, err := verifier.ParseLeafRecord(recBytes)
	if err != nil {
		return nil, err
	}
	e := &EntryResponse{Index: idx, Type: rec.Type.String(), LeafRecord: recBytes}
	body, err := s.l.Entry(ctx, idx)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		e.Erased = true
	case err != nil:
		return nil, err
	case rec.Type == verifier.EntryDisclosure:
		e.Envelope = body
	default:
		e.Body = body
	}
	if e.Findings, err = s.l.Findings(ctx, idx); err != nil {
		return nil, err
	}
	return e, nil
}

// event returns one disclosure with its envelope: the FG, or the party that
// disclosed it.
func (s *Server) event(w http.ResponseWriter, r *http.Request) {
	p := callerOf(r)
	id := r.PathValue("id")
	if !events.ValidEventID(id) {
		s.fail(w, r, http.StatusBadRequest, "bad_event_id", "event id must be a lower-case UUIDv7")
		return
	}
	// Event ids are per party: a party reads its own; the FG names the
	// discloser when more than one party used the id.
	var idx uint64
	var err error
	if p.Role == RoleParty {
		idx, err = s.l.LookupEvent(r.Context(), p.Party, id)
	} else if discloser := r.URL.Query().Get("discloser"); discloser != "" {
		if !events.ValidPartyID(discloser) {
			s.fail(w, r, http.StatusBadRequest, "bad_parameter", "discloser must be a party id")
			return
		}
		idx, err = s.l.LookupEvent(r.Context(), discloser, id)
	} else {
		var es []ledger.LoggedEvent
		es, err = s.l.EventsWithID(r.Context(), id)
		switch {
		case err != nil:
		case len(es) == 0:
			err = fmt.Errorf("no event with that id: %w", ledger.ErrNotFound)
		case len(es) > 1:
			s.fail(w, r, http.StatusConflict, "ambiguous_event_id", fmt.Sprintf("%d events use this id; give discloser", len(es)))
			return
		default:
			idx = es[0].Index
		}
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	e, err := s.loadEntry(r.Context(), idx)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if p.Role == RoleParty {
		env, err := events.ParseEnvelope(e.Envelope)
		var d *events.Disclosure
		if err == nil {
			d, err = events.DecodeDisclosure(env.Payload)
		}
		if err != nil || d.Discloser != p.Party {
			// Same answer as for an unknown id: a party learns nothing
			// about other parties' events.
			s.fail(w, r, http.StatusNotFound, "not_found", "not found")
			return
		}
	}
	writeJSON(w, e)
}

// EntriesResponse is a page of /v1/entries (the verifier's format).
type EntriesResponse = verifier.EntriesResponse

// entries pages through every stored entry, for the FG's audit.
func (s *Server) entries(w http.ResponseWriter, r *http.Request) {
	head := s.l.Head()
	if head == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "no_checkpoint", "the log has no checkpoint yet")
		return
	}
	from, _, err1 := parseUint(r, "from")
	limit, hasLimit, err2 := parseUint(r, "limit")
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
		return
	}
	if !hasLimit || limit > 1000 {
		limit = 1000
	}
	if limit == 0 {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", "limit must be at least 1")
		return
	}
	resp := EntriesResponse{Entries: []*EntryResponse{}, TreeSize: head.Size}
	end := min(from+limit, head.Size)
	for idx := from; idx < end; idx++ {
		e, err := s.loadEntry(r.Context(), idx)
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		resp.Entries = append(resp.Entries, e)
	}
	if end < head.Size {
		resp.Next = &end
	}
	writeJSON(w, resp)
}

// covenants is GET /v1/covenants: every covenant version in the log, the
// signed bytes as logged (events.CovenantVersions). The covenant is public;
// a gateway follows new versions from here and checks each against the
// administrator key it pins, so nothing here is taken on trust.
func (s *Server) covenants(w http.ResponseWriter, r *http.Request) {
	v := s.l.ChainView()
	if v == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "no_covenant", "the ledger has no covenant yet")
		return
	}
	leaves, err := s.l.CovenantLeaves(r.Context(), math.MaxUint64)
	if err != nil || len(leaves) < len(v.Versions) {
		s.log.Error("couldn't list the covenant leaves", "err", err)
		s.fail(w, r, http.StatusInternalServerError, "internal", "couldn't list the covenant versions")
		return
	}
	body := events.CovenantVersions{Versions: make([]events.LoggedCovenant, len(v.Versions))}
	for i, sc := range v.Versions {
		body.Versions[i] = events.LoggedCovenant{Version: sc.Covenant.Version, LeafIndex: leaves[i], Signed: sc.Envelope.Raw}
	}
	writeJSON(w, body)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.l.Done():
		s.fail(w, r, http.StatusServiceUnavailable, "sequencer_stopped", "the sequencer has stopped")
		return
	default:
	}
	if s.cfg.Healthy != nil {
		if err := s.cfg.Healthy(); err != nil {
			s.fail(w, r, http.StatusServiceUnavailable, "unhealthy", err.Error())
			return
		}
	}
	role := "active"
	if s.l.Standby() {
		role = "standby"
		// ?role=active asks "may this replica take writes?": what a load
		// balancer's readiness check wants, so that only the active
		// ledger receives inzage requests and erasures.
		if r.URL.Query().Get("role") == "active" {
			s.fail(w, r, http.StatusServiceUnavailable, "standby", "this ledger is a standby")
			return
		}
	}
	var size uint64
	if h := s.l.Head(); h != nil {
		size = h.Size
	}
	body := map[string]any{"status": "ok", "role": role, "tree_size": size}
	if p, err := s.l.WitnessPolicy(); p != nil || err != nil {
		var wsize uint64
		if wh := s.l.WitnessedHead(); wh != nil {
			wsize = wh.Size
		}
		body["witnessed_tree_size"] = wsize
		if s.cfg.Witnessing != nil && !s.l.Standby() {
			if err := s.cfg.Witnessing(); err != nil {
				body["status"] = "degraded"
				body["witnessing"] = err.Error()
			}
		}
	}
	writeJSON(w, body)
}
