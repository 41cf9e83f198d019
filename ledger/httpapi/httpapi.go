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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger"
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
}

// Server is the HTTP handler.
type Server struct {
	cfg Config
	l   *ledger.Ledger
	log *slog.Logger
	mux *http.ServeMux

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
	s := &Server{cfg: cfg, l: cfg.Ledger, log: logger, mux: http.NewServeMux(), limits: map[string]*rate.Limiter{}}
	s.mux.HandleFunc("GET /checkpoint", s.checkpoint)
	s.mux.HandleFunc("GET /tile/", s.tile)
	s.mux.HandleFunc("GET /v1/proof/inclusion", s.inclusion)
	s.mux.HandleFunc("GET /v1/proof/consistency", s.consistency)
	s.mux.HandleFunc("GET /v1/events/{id}/status", s.status)
	s.mux.HandleFunc("GET /v1/events/{id}", s.event)
	s.mux.HandleFunc("GET /v1/entries", s.entries)
	s.mux.HandleFunc("GET /v1/checkpoints", s.checkpoints)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("POST /v1/inzage", s.activeOnly(s.inzageRegister))
	s.mux.HandleFunc("GET /v1/inzage/{id}", s.activeOnly(s.inzageGet))
	s.mux.HandleFunc("POST /v1/inzage/{id}/release", s.activeOnly(s.inzageRelease))
	s.mux.HandleFunc("POST /v1/erasures", s.activeOnly(s.erase))
	if cfg.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttpHandler(cfg.Gatherer))
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// A wrong or malformed token is refused on every route, the public
	// ones too: served as anonymous, a client would not learn that its
	// token is wrong, and a guesser could probe tokens on routes that
	// log no refusal.
	if _, ok := s.authorize(r); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "unknown or malformed bearer token")
		return
	}
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

// activeOnly refuses a request on a standby ledger. Inzage requests and
// their releases are kept in the store outside the log, and erasures are
// sequenced: neither may happen on a standby, whose store only follows the
// active ledger's (SPOOR_LOG). A client (or a load balancer that sends to
// every replica) learns to go to the active one instead.
func (s *Server) activeOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.l.Standby() {
			w.Header().Set("Retry-After", "1")
			s.fail(w, r, http.StatusServiceUnavailable, "standby", "this ledger is a standby that only serves reads; send inzage requests and erasures to the active ledger")
			return
		}
		h(w, r)
	}
}

func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ledger.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "not_found", "not found")
		return
	}
	if errors.Is(err, context.Canceled) {
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

// authorize returns the principal of the request's bearer token, or
// RolePublic without one. A wrong token is an error, not public access.
func (s *Server) authorize(r *http.Request) (Principal, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{Role: RolePublic}, true
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return Principal{}, false
	}
	p, ok := s.cfg.Tokens[TokenHash(tok)]
	return p, ok
}

// TokenHash is the SHA-256 of a bearer token, the key of Config.Tokens.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func (s *Server) require(w http.ResponseWriter, r *http.Request, roles ...Role) (Principal, bool) {
	p, ok := s.authorize(r)
	if !ok {
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "unknown or malformed bearer token")
		return p, false
	}
	for _, role := range roles {
		if p.Role == role {
			return p, true
		}
	}
	if p.Role == RolePublic {
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "this endpoint needs a bearer token")
	} else {
		s.fail(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not read this", p.Role))
	}
	return p, false
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	h := s.l.Head()
	if h == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "no_checkpoint", "the log has no checkpoint yet")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(h.Note)
}

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
		index, err = s.l.LookupEvent(r.Context(), id)
		if err != nil {
			s.failErr(w, r, err)
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
		resp.TreeSize = head.Size
		resp.Checkpoint = string(head.Note)
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
	EventID   string        `json:"event_id"`
	Status    string        `json:"status"` // committed | rejected | unknown
	LeafIndex *uint64       `json:"leaf_index,omitempty"`
	Reason    events.Reason `json:"reason,omitempty"`
	Message   string        `json:"message,omitempty"`
	At        *time.Time    `json:"at,omitempty"`
}

// status answers for any event id: ids are random and carry no personal
// data, and a publisher needs no token to learn its event's fate.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !events.ValidEventID(id) {
		s.fail(w, r, http.StatusBadRequest, "bad_event_id", "event id must be a lower-case UUIDv7")
		return
	}
	resp := StatusResponse{EventID: id, Status: "unknown"}
	idx, err := s.l.LookupEvent(r.Context(), id)
	switch {
	case err == nil:
		resp.Status, resp.LeafIndex = "committed", &idx
		if rec, err := s.l.LeafRecord(r.Context(), idx); err == nil {
			t := rec.IntegratedAt
			resp.At = &t
		}
	case errors.Is(err, ledger.ErrNotFound):
		rej, err := s.l.Rejected(r.Context(), id)
		if err == nil {
			resp.Status, resp.Reason, resp.Message, resp.At = "rejected", rej.Reason, rej.Message, &rej.At
		} else if !errors.Is(err, ledger.ErrNotFound) {
			s.failErr(w, r, err)
			return
		}
	default:
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, resp)
}

// EntryResponse is one stored entry as the FG reads it.
//
// Envelope and Body are the entry's exact bytes (base64 in the JSON), so
// that their SHA-256 is the leaf record's body hash as they arrive: an
// envelope embedded as a JSON object would be re-indented with the page
// and no longer hash to its leaf.
type EntryResponse struct {
	Index      uint64           `json:"index"`
	Type       string           `json:"type"`
	LeafRecord []byte           `json:"leaf_record"`
	Envelope   []byte           `json:"envelope,omitempty"`
	Body       []byte           `json:"body,omitempty"`
	Erased     bool             `json:"erased,omitempty"`
	Findings   []events.Finding `json:"findings,omitempty"`
}

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
	p, ok := s.require(w, r, RoleFG, RoleParty)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !events.ValidEventID(id) {
		s.fail(w, r, http.StatusBadRequest, "bad_event_id", "event id must be a lower-case UUIDv7")
		return
	}
	idx, err := s.l.LookupEvent(r.Context(), id)
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

// EntriesResponse is a page of /v1/entries.
type EntriesResponse struct {
	Entries  []*EntryResponse `json:"entries"`
	Next     *uint64          `json:"next,omitempty"`
	TreeSize uint64           `json:"tree_size"`
}

// entries pages through every stored entry, for the FG's audit.
func (s *Server) entries(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.require(w, r, RoleFG); !ok {
		return
	}
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
	writeJSON(w, map[string]any{"status": "ok", "role": role, "tree_size": size})
}
