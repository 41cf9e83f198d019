package desk

// The desk's erasure pages: one desk user proposes to erase a disclosure
// (its leaf index, which the request page shows, and a ground of AVG art.
// 17(1)); a second desk user of the same scope confirms it, and only then
// does the ledger append the tombstone. The two-person rule is the
// ledger's (answer.ConfirmErasure refuses the proposer's own credential);
// the page only leaves out the button the proposer cannot use.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/deskapi"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// erasureView is the erasure page's data.
type erasureView struct {
	Proposals []erasureRow
	Grounds   []string
	// Leaf is the leaf index to fill in (from ?volgnummer=, a request
	// page's link); Ground the ground chosen before a mistake.
	Leaf, Ground string
}

// erasureRow is one proposal as the page shows it.
type erasureRow struct {
	verifier.ErasureProposal
	// Mine is true when the signed-in desk user proposed it: they may
	// withdraw it, not confirm it.
	Mine bool
	Open bool
}

func (s *Server) erasurePage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.renderErasures(w, r, sess, http.StatusOK, "", erasureView{Leaf: leafParam(r.URL.Query().Get("volgnummer"))})
}

// leafParam keeps a leaf index from a link, and nothing else.
func leafParam(v string) string {
	if _, err := strconv.ParseUint(v, 10, 64); err != nil {
		return ""
	}
	return v
}

func (s *Server) renderErasures(w http.ResponseWriter, r *http.Request, sess *session, status int, problem string, v erasureView) {
	data, _, err := s.ledgerCall(r.Context(), sess.User, "GET", "/v1/erasures", nil)
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	var l verifier.ErasureList
	if err := json.Unmarshal(data, &l); err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	// Newest first, as the requests.
	slices.Reverse(l.Proposals)
	for _, p := range l.Proposals {
		v.Proposals = append(v.Proposals, erasureRow{ErasureProposal: p, Mine: p.ProposedBy == sess.User.name,
			Open: p.Status == verifier.ErasureProposed})
	}
	v.Grounds = verifier.ErasureGrounds()
	p := s.base(sess, "Gegevens verwijderen")
	p.Error, p.Data = problem, v
	s.render(w, status, "wissen.html", p)
}

func (s *Server) proposeErasure(w http.ResponseWriter, r *http.Request, sess *session) {
	leaf := strings.TrimSpace(r.PostFormValue("volgnummer"))
	ground := r.PostFormValue("grond")
	v := erasureView{Leaf: leafParam(leaf), Ground: ground}
	n, err := strconv.ParseUint(leaf, 10, 64)
	if err != nil {
		s.renderErasures(w, r, sess, http.StatusUnprocessableEntity, "Vul het volgnummer van de melding in: alleen cijfers.", v)
		return
	}
	if !slices.Contains(verifier.ErasureGrounds(), ground) {
		s.renderErasures(w, r, sess, http.StatusUnprocessableEntity, "Kies de grond waarop de melding wordt verwijderd.", v)
		return
	}
	data, _, err := s.ledgerCall(r.Context(), sess.User, "POST", "/v1/erasures", deskapi.ErasureRequest{LeafIndex: n, Ground: ground})
	if err != nil {
		if msg := erasureRefusal(err); msg != "" {
			s.renderErasures(w, r, sess, http.StatusConflict, msg, v)
			return
		}
		s.ledgerFailed(w, sess, err)
		return
	}
	var p verifier.ErasureProposal
	if err := json.Unmarshal(data, &p); err != nil || !events.ValidEventID(p.ID) {
		s.ledgerFailed(w, sess, errors.Join(errors.New("the ledger's answer has no proposal id"), err))
		return
	}
	s.log.Info("erasure proposed at the desk", "proposal_id", p.ID, "leaf_index", n, "desk_user", sess.User.name)
	s.sess.SetFlash(sess, "ok", "Het voorstel is vastgelegd. Een tweede medewerker moet het bevestigen. Pas dan wordt de melding verwijderd.")
	http.Redirect(w, r, "/wissen", http.StatusSeeOther)
}

// decideErasure confirms or withdraws a proposal (action is the ledger's
// "confirm" or "withdraw").
func (s *Server) decideErasure(action string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, sess *session) {
		id := r.PathValue("id")
		if !events.ValidEventID(id) {
			s.ledgerFailed(w, sess, &LedgerError{Status: http.StatusNotFound})
			return
		}
		_, _, err := s.ledgerCall(r.Context(), sess.User, "POST", "/v1/erasures/"+url.PathEscape(id)+"/"+action, nil)
		if err != nil {
			if msg := erasureRefusal(err); msg != "" {
				s.renderErasures(w, r, sess, http.StatusConflict, msg, erasureView{})
				return
			}
			s.ledgerFailed(w, sess, err)
			return
		}
		msg := "Het voorstel is ingetrokken. De melding blijft staan."
		if action == "confirm" {
			msg = "De melding is verwijderd. In het logboek staat nu een grafsteen met de grond."
		}
		s.log.Info("erasure decided at the desk", "proposal_id", id, "action", action, "desk_user", sess.User.name)
		s.sess.SetFlash(sess, "ok", msg)
		http.Redirect(w, r, "/wissen", http.StatusSeeOther)
	}
}

// erasureRefusal is the Dutch words for a refusal of the erasure workflow
// that the desk user can act on, or "".
func erasureRefusal(err error) string {
	var le *LedgerError
	if !errors.As(err, &le) {
		return ""
	}
	switch le.Code {
	case "second_person_required":
		return "U deed dit voorstel zelf. Een tweede medewerker moet het bevestigen."
	case "already_erased":
		return "Deze melding is al verwijderd."
	case "already_proposed":
		return "Voor deze melding staat al een voorstel open. Bevestig dat voorstel of trek het in."
	case "already_decided":
		return "Over dit voorstel is al besloten."
	case "expired":
		return "Dit voorstel is verlopen. Doe het voorstel opnieuw."
	case "not_found":
		return "Dit volgnummer hoort niet bij een melding van uw balie."
	case "invalid_request", "bad_request":
		return "Het logboek weigerde dit: het volgnummer is geen melding die u kunt verwijderen."
	}
	return ""
}

func erasureGroundText(g string) string { return report.ErasureGroundLabel(g) }
func erasureStatusText(s string) string { return report.ErasureStatusLabel(s) }
