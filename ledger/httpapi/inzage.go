package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"golang.org/x/time/rate"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/deskapi"
)

// InzageRegisterRequest is the body of POST /v1/inzage (deskapi).
type InzageRegisterRequest = deskapi.InzageRegisterRequest

// InzageStatus is the answer of POST /v1/inzage and GET /v1/inzage/<id> (deskapi).
type InzageStatus = deskapi.InzageStatus

// InzageReleaseRequest is the body of POST /v1/inzage/<id>/release (deskapi).
type InzageReleaseRequest = deskapi.InzageReleaseRequest

func statusOf(r *answer.AccessRequest) InzageStatus {
	return InzageStatus{ID: r.ID, Status: r.Status, Relation: r.Relation, RequestedBy: r.RequestedBy,
		RequestedAt: r.RequestedAt, ReleasedBy: r.ReleasedBy, ReleasedAt: r.ReleasedAt,
		Parties: r.Scope.Parties, CentralDesk: r.Scope.CentralDesk}
}

// allow applies the per-desk-user rate limit on the desk's writes (inzage
// requests and releases, erasure proposals and decisions).
func (s *Server) allow(w http.ResponseWriter, r *http.Request, p Principal) bool {
	s.limitMu.Lock()
	lim, ok := s.limits[p.Name]
	if !ok {
		// A burst of a third of the minute's allowance: a desk user
		// working through one case (register, release, propose, confirm)
		// makes several calls within seconds.
		lim = rate.NewLimiter(rate.Limit(float64(s.cfg.AccessLimit)/60), max(1, s.cfg.AccessLimit/3))
		s.limits[p.Name] = lim
	}
	s.limitMu.Unlock()
	if !lim.Allow() {
		w.Header().Set("Retry-After", "10")
		s.fail(w, r, http.StatusTooManyRequests, "rate_limited", "too many requests from this desk user; try again shortly")
		return false
	}
	return true
}

func (s *Server) inzageRegister(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !s.allow(w, r, c.Principal) {
		return
	}
	var req InzageRegisterRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {id_type, pseudonyms: [{key_id, pseudonym}], relation, child_16_or_older}")
		return
	}
	ar := &answer.AccessRequest{IDType: req.IDType, Pseudonyms: req.Pseudonyms, Relation: req.Relation,
		Child16OrOlder: req.Child16OrOlder, Scope: c.Scope, RequestedBy: c.Name, RequestedByCredential: c.Credential}
	if err := s.a.RegisterAccess(r.Context(), ar); err != nil {
		if errors.Is(err, answer.ErrAccessInvalid) {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		s.failErr(w, r, err)
		return
	}
	// The log line names the request, the desk user and the time; the
	// pseudonym stays in the store's access record.
	s.log.Info("inzage request registered", "request_id", ar.ID, "desk_user", c.Name, "relation", ar.Relation)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, statusOf(ar))
}

// InzageList is the answer of GET /v1/inzage (deskapi).
type InzageList = deskapi.InzageList

// inzageList lists the requests of the caller's scope (spoor desk's list).
func (s *Server) inzageList(w http.ResponseWriter, r *http.Request) {
	ars, err := s.a.AccessRequests(r.Context(), callerOf(r).Scope)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	out := InzageList{Requests: make([]InzageStatus, 0, len(ars))}
	for _, ar := range ars {
		out.Requests = append(out.Requests, statusOf(ar))
	}
	writeJSON(w, out)
}

func (s *Server) inzageGet(w http.ResponseWriter, r *http.Request) {
	ar, err := s.a.AccessInScope(r.Context(), callerOf(r).Scope, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	writeJSON(w, statusOf(ar))
}

func (s *Server) inzageRelease(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !s.allow(w, r, c.Principal) {
		return
	}
	var req InzageReleaseRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {withheld: [{index, ground}], young_person_consent, consent_reference}")
			return
		}
	}
	if req.YoungPersonConsent != (req.ConsentReference != "") {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "young_person_consent: true goes with a consent_reference (where the consent is kept), and a reference with it")
		return
	}
	rel := answer.Release{Withheld: req.Withheld}
	if req.YoungPersonConsent {
		rel.YoungPersonConsent = req.ConsentReference
	}
	ar, err := s.a.ReleaseAccess(r.Context(), c.Scope, r.PathValue("id"), answer.DeskUser{Name: c.Name, Credential: c.Credential}, rel)
	var young *answer.YoungPersonError
	switch {
	case errors.As(err, &young):
		s.fail(w, r, http.StatusConflict, "young_person_16_plus", young.Error())
		return
	case errors.Is(err, answer.ErrAccessSamePerson):
		s.fail(w, r, http.StatusForbidden, "second_person_required", "an answer must be released by a second desk user, with a credential of their own")
		return
	case errors.Is(err, answer.ErrAccessReleased):
		s.fail(w, r, http.StatusConflict, "already_released", "this request was already released")
		return
	case errors.Is(err, answer.ErrAccessInvalid):
		s.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		s.failErr(w, r, err)
		return
	}
	s.log.Info("inzage request released", "request_id", ar.ID, "desk_user", c.Name, "answer_leaf", *ar.AnswerIndex,
		"young_person_consent", rel.YoungPersonConsent != "")
	s.writeBundle(w, r, ar)
}

// inzageBundle downloads the bundle of a released request again: the very
// bytes handed out at release, for either desk user of the scope.
func (s *Server) inzageBundle(w http.ResponseWriter, r *http.Request) {
	ar, err := s.a.AccessInScope(r.Context(), callerOf(r).Scope, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if ar.Status != answer.AccessReleased {
		s.fail(w, r, http.StatusConflict, "not_released", "this request has not been released yet")
		return
	}
	s.writeBundle(w, r, ar)
}

// InzagePreview is the answer of GET /v1/inzage/<id>/preview (deskapi).
type InzagePreview = deskapi.InzagePreview

// InzagePreviewEntry is one disclosure of an InzagePreview (deskapi).
type InzagePreviewEntry = deskapi.InzagePreviewEntry

func (s *Server) inzagePreview(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	vb, err := s.a.PreviewAccess(r.Context(), c.Scope, r.PathValue("id"))
	if errors.Is(err, answer.ErrAccessReleased) {
		s.fail(w, r, http.StatusConflict, "already_released", "this request was released; its bundle is the answer")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	out := InzagePreview{Disclosures: make([]InzagePreviewEntry, 0, len(vb.Disclosures)), DeskContacts: []*events.Contact{}}
	for _, vd := range vb.Disclosures {
		d, cov := vd.Disclosure, vd.Covenant
		e := InzagePreviewEntry{Index: vd.Index, OccurredAt: d.OccurredAt, Discloser: cov.PartyName(d.Discloser),
			Purpose: cov.PurposeLabel(d.Purpose), Recipients: []string{}, Categories: []string{}}
		for _, rc := range d.Recipients {
			// An id outside the covenant is not shown: it could be
			// anything of the right shape, a number among them.
			name := verifier.UnknownValueNL(rc)
			if _, ok := cov.Party(rc); ok {
				name = cov.PartyName(rc)
			}
			e.Recipients = append(e.Recipients, name)
		}
		for _, cat := range d.Categories {
			e.Categories = append(e.Categories, cov.CategoryLabel(cat))
			if k, ok := cov.Category(cat); ok && k.Special != events.SpecialNone {
				e.Special = true
			}
		}
		out.Disclosures = append(out.Disclosures, e)
	}
	latest := vb.Covenant()
	if latest.Contact != nil {
		out.FGContact = latest.Contact.FG
	}
	if c.Scope.CentralDesk {
		if latest.Contact != nil && latest.Contact.Desk != nil {
			out.DeskContacts = append(out.DeskContacts, latest.Contact.Desk)
		}
	} else {
		for _, id := range c.Scope.Parties {
			if p, ok := latest.Party(id); ok && p.Contact != nil {
				out.DeskContacts = append(out.DeskContacts, p.Contact)
			}
		}
	}
	writeJSON(w, out)
}

// writeBundle answers with the bundle of a released request; while no
// checkpoint covers its answer entry yet (witnesses away), 503 with
// Retry-After: the request is released, and GET .../bundle fetches it.
func (s *Server) writeBundle(w http.ResponseWriter, r *http.Request, ar *answer.AccessRequest) {
	bundle, err := s.a.AccessBundle(r.Context(), ar)
	if errors.Is(err, answer.ErrAnswerErased) {
		s.fail(w, r, http.StatusGone, "answer_erased", "this answer was erased after the covenant's retention period for answers (retention.answers_days)")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if warning := PossibleBSNWarning(bundle); warning != "" {
		w.Header().Set(WarningHeader, warning)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="inzage-`+ar.ID+`.json"`)
	_, _ = w.Write(bundle)
}

// ErasureRequest is the body of POST /v1/erasures (deskapi).
type ErasureRequest = deskapi.ErasureRequest

// ErasureResponse is the answer to a confirmation: the tombstone's leaf
// index, with the proposal it carried out.
type ErasureResponse struct {
	ErasedIndex    uint64                    `json:"erased_index"`
	TombstoneIndex uint64                    `json:"tombstone_index"`
	RuleID         string                    `json:"rule_id"`
	Proposal       *verifier.ErasureProposal `json:"proposal"`
}

// erasureView is a proposal as an answer shows it: with its status at the
// time of the answer (a lapsed proposal reads "expired").
func (s *Server) erasureView(p *verifier.ErasureProposal) *verifier.ErasureProposal {
	v := *p
	v.Status = p.EffectiveStatus(s.l.Now())
	return &v
}

func (s *Server) erasurePropose(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !s.allow(w, r, c.Principal) {
		return
	}
	var req ErasureRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || !answer.ValidErasureGround(req.Ground) {
		s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {leaf_index, ground}, ground one of avg-17-1-a to avg-17-1-f (AVG art. 17(1))")
		return
	}
	p, err := s.a.ProposeErasure(r.Context(), c.Scope, answer.DeskUser{Name: c.Name, Credential: c.Credential}, req.LeafIndex, req.Ground)
	if err != nil {
		s.erasureFail(w, r, err)
		return
	}
	s.log.Info("erasure proposed", "proposal_id", p.ID, "leaf_index", p.LeafIndex, "desk_user", c.Name)
	w.WriteHeader(http.StatusAccepted)
	writeJSON(w, s.erasureView(p))
}

func (s *Server) erasureFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ledger.ErrAlreadyErased):
		s.fail(w, r, http.StatusConflict, "already_erased", "this disclosure is already erased")
	case errors.Is(err, answer.ErrErasureOpen):
		s.fail(w, r, http.StatusConflict, "already_proposed", "an erasure of this disclosure is already proposed; confirm or withdraw that one")
	case errors.Is(err, answer.ErrErasureDecided):
		s.fail(w, r, http.StatusConflict, "already_decided", "this proposal was already confirmed or withdrawn")
	case errors.Is(err, answer.ErrErasureExpired):
		s.fail(w, r, http.StatusGone, "expired", "this proposal expired before a second desk user confirmed it; propose it again")
	case errors.Is(err, answer.ErrErasureSamePerson):
		s.fail(w, r, http.StatusForbidden, "second_person_required", "an erasure must be confirmed by a second desk user, with a credential of their own")
	case errors.Is(err, answer.ErrErasureInvalid):
		s.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
	default:
		s.failErr(w, r, err)
	}
}

func (s *Server) erasureConfirm(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !s.allow(w, r, c.Principal) {
		return
	}
	p, err := s.a.ConfirmErasure(r.Context(), c.Scope, answer.DeskUser{Name: c.Name, Credential: c.Credential}, r.PathValue("id"))
	if err != nil {
		s.erasureFail(w, r, err)
		return
	}
	s.log.Info("disclosure erased on request", "proposal_id", p.ID, "leaf_index", p.LeafIndex,
		"tombstone_index", *p.TombstoneIndex, "desk_user", c.Name)
	writeJSON(w, ErasureResponse{ErasedIndex: p.LeafIndex, TombstoneIndex: *p.TombstoneIndex,
		RuleID: verifier.ErasureRulePrefix + p.Ground, Proposal: p})
}

func (s *Server) erasureWithdraw(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	p, err := s.a.WithdrawErasure(r.Context(), c.Scope, answer.DeskUser{Name: c.Name, Credential: c.Credential}, r.PathValue("id"))
	if err != nil {
		s.erasureFail(w, r, err)
		return
	}
	s.log.Info("erasure proposal withdrawn", "proposal_id", p.ID, "desk_user", c.Name)
	writeJSON(w, s.erasureView(p))
}

// erasureList lists proposals: the FG sees all of them (the audit reads
// them here), a desk user those of its own scope.
func (s *Server) erasureList(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	scope := c.Scope.Identity()
	ps, err := s.l.ErasureProposals(r.Context(), func(p *verifier.ErasureProposal) bool {
		return c.Role == RoleFG || p.Scope == scope
	})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	out := verifier.ErasureList{Proposals: make([]verifier.ErasureProposal, 0, len(ps))}
	for _, p := range ps {
		out.Proposals = append(out.Proposals, *s.erasureView(p))
	}
	writeJSON(w, out)
}

func (s *Server) erasureGet(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	p, err := s.l.ErasureProposal(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if c.Role != RoleFG && p.Scope != c.Scope.Identity() {
		s.fail(w, r, http.StatusNotFound, "not_found", "not found")
		return
	}
	writeJSON(w, s.erasureView(p))
}
