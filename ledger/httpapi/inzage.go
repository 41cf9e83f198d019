package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

// InzageRegisterRequest is the body of POST /v1/inzage. The desk sends
// pseudonyms, never the number itself: `spoor inzage request` reads the
// BSN from standard input and computes them under every pseudonym key.
type InzageRegisterRequest struct {
	IDType         events.IDType               `json:"id_type"`
	Pseudonyms     []verifier.SubjectPseudonym `json:"pseudonyms"`
	Relation       string                      `json:"relation"`
	Child16OrOlder bool                        `json:"child_16_or_older"`
}

// InzageStatus is the answer of POST /v1/inzage and GET /v1/inzage/<id>.
type InzageStatus struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Relation    string     `json:"relation"`
	RequestedBy string     `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	ReleasedBy  string     `json:"released_by,omitempty"`
	ReleasedAt  *time.Time `json:"released_at,omitempty"`
	Parties     []string   `json:"parties"`
	CentralDesk bool       `json:"central_desk"`
}

// InzageReleaseRequest is the body of POST /v1/inzage/<id>/release.
type InzageReleaseRequest struct {
	Withheld []ledger.Withhold `json:"withheld"`
}

func statusOf(r *ledger.AccessRequest) InzageStatus {
	return InzageStatus{ID: r.ID, Status: r.Status, Relation: r.Relation, RequestedBy: r.RequestedBy,
		RequestedAt: r.RequestedAt, ReleasedBy: r.ReleasedBy, ReleasedAt: r.ReleasedAt,
		Parties: r.Scope.Parties, CentralDesk: r.Scope.CentralDesk}
}

// allow applies the per-desk-user rate limit on access requests.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, p Principal) bool {
	s.limitMu.Lock()
	lim, ok := s.limits[p.Name]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(float64(s.cfg.AccessLimit)/60), max(1, s.cfg.AccessLimit/6))
		s.limits[p.Name] = lim
	}
	s.limitMu.Unlock()
	if !lim.Allow() {
		w.Header().Set("Retry-After", "10")
		s.fail(w, r, http.StatusTooManyRequests, "rate_limited", "too many access requests from this desk user; try again shortly")
		return false
	}
	return true
}

// scope is whose disclosures a desk user answers for: all parties when the
// covenant names a central desk, otherwise the desk user's own party.
func (s *Server) scope(p Principal) (verifier.BundleScope, bool) {
	sc, _ := s.l.Covenant()
	if sc.Covenant.CentralDesk && p.Party == "" {
		var all []string
		for _, party := range sc.Covenant.Parties {
			all = append(all, party.ID)
		}
		return verifier.BundleScope{Parties: all, CentralDesk: true}, true
	}
	if _, ok := sc.Covenant.Party(p.Party); !ok {
		return verifier.BundleScope{}, false
	}
	return verifier.BundleScope{Parties: []string{p.Party}}, true
}

func (s *Server) inzageRegister(w http.ResponseWriter, r *http.Request) {
	p, ok := s.require(w, r, RoleDesk)
	if !ok || !s.allow(w, r, p) {
		return
	}
	var req InzageRegisterRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {id_type, pseudonyms: [{key_id, pseudonym}], relation, child_16_or_older}")
		return
	}
	scope, ok := s.scope(p)
	if !ok {
		s.fail(w, r, http.StatusForbidden, "forbidden", "this desk user answers for no party of the covenant")
		return
	}
	ar := &ledger.AccessRequest{IDType: req.IDType, Pseudonyms: req.Pseudonyms, Relation: req.Relation,
		Child16OrOlder: req.Child16OrOlder, Scope: scope, RequestedBy: p.Name}
	if err := s.l.RegisterAccess(r.Context(), ar); err != nil {
		if errors.Is(err, ledger.ErrAccessInvalid) {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		s.failErr(w, r, err)
		return
	}
	// The log line names the request, the desk user and the time; the
	// pseudonym stays in the store's access record.
	s.log.Info("inzage request registered", "request_id", ar.ID, "desk_user", p.Name, "relation", ar.Relation)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, statusOf(ar))
}

func (s *Server) inzageGet(w http.ResponseWriter, r *http.Request) {
	p, ok := s.require(w, r, RoleDesk)
	if !ok {
		return
	}
	ar, err := s.l.Access(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if scope, ok := s.scope(p); !ok || !sameScope(scope, ar.Scope) {
		s.fail(w, r, http.StatusNotFound, "not_found", "not found")
		return
	}
	writeJSON(w, statusOf(ar))
}

func sameScope(a, b verifier.BundleScope) bool {
	return a.CentralDesk == b.CentralDesk && slices.Equal(a.Parties, b.Parties)
}

func (s *Server) inzageRelease(w http.ResponseWriter, r *http.Request) {
	p, ok := s.require(w, r, RoleDesk)
	if !ok || !s.allow(w, r, p) {
		return
	}
	var req InzageReleaseRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {withheld: [{index, ground}]}")
			return
		}
	}
	id := r.PathValue("id")
	ar, err := s.l.Access(r.Context(), id)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if scope, ok := s.scope(p); !ok || !sameScope(scope, ar.Scope) {
		s.fail(w, r, http.StatusNotFound, "not_found", "not found")
		return
	}
	ar, err = s.l.ReleaseAccess(r.Context(), id, p.Name, req.Withheld)
	switch {
	case errors.Is(err, ledger.ErrAccessSamePerson):
		s.fail(w, r, http.StatusForbidden, "second_person_required", err.Error())
		return
	case errors.Is(err, ledger.ErrAccessReleased):
		s.fail(w, r, http.StatusConflict, "already_released", err.Error())
		return
	case errors.Is(err, ledger.ErrAccessInvalid):
		s.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		s.failErr(w, r, err)
		return
	}
	bundle, err := s.l.AccessBundle(r.Context(), ar)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.log.Info("inzage request released", "request_id", ar.ID, "desk_user", p.Name)
	if warning := PossibleBSNWarning(bundle); warning != "" {
		w.Header().Set(WarningHeader, warning)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="inzage-`+ar.ID+`.json"`)
	_, _ = w.Write(bundle)
}

// ErasureRequest is the body of POST /v1/erasures: erase one disclosure on
// a legal ground (an erasure request where the law allows it, AVG art. 17).
type ErasureRequest struct {
	LeafIndex uint64 `json:"leaf_index"`
	// Ground names the legal ground, e.g. "avg-17-1-a" (no longer needed)
	// or "avg-17-1-d" (unlawfully processed).
	Ground string `json:"ground"`
}

// ErasureResponse is the answer: the tombstone's leaf index.
type ErasureResponse struct {
	ErasedIndex    uint64 `json:"erased_index"`
	TombstoneIndex uint64 `json:"tombstone_index"`
	RuleID         string `json:"rule_id"`
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	p, ok := s.require(w, r, RoleDesk)
	if !ok || !s.allow(w, r, p) {
		return
	}
	var req ErasureRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || !erasureGroundRE.MatchString(req.Ground) {
		s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {leaf_index, ground}, ground like avg-17-1-a")
		return
	}
	if scope, ok := s.scope(p); ok && !scope.CentralDesk {
		// A party's desk erases only its own party's disclosures.
		if !s.disclosedBy(r, req.LeafIndex, p.Party) {
			s.fail(w, r, http.StatusNotFound, "not_found", "not found")
			return
		}
	}
	tomb, err := s.l.Erase(r.Context(), req.LeafIndex, req.Ground)
	switch {
	case errors.Is(err, ledger.ErrAlreadyErased):
		s.fail(w, r, http.StatusConflict, "already_erased", "this disclosure was already erased")
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, "not_erasable", err.Error())
		return
	}
	s.log.Info("disclosure erased on request", "leaf_index", req.LeafIndex, "tombstone_index", tomb, "desk_user", p.Name)
	writeJSON(w, ErasureResponse{ErasedIndex: req.LeafIndex, TombstoneIndex: tomb, RuleID: "erasure:" + req.Ground})
}

var erasureGroundRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,50}$`)

func (s *Server) disclosedBy(r *http.Request, idx uint64, party string) bool {
	env, err := s.l.Entry(r.Context(), idx)
	if err != nil {
		return false
	}
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return false
	}
	d, err := events.DecodeDisclosure(e.Payload)
	return err == nil && d.Discloser == party
}
