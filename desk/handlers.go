package desk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/deskapi"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// page is what every template gets.
type page struct {
	Title     string
	CSRF      string
	User      string
	Flash     string
	FlashKind string // "ok" or "fout"
	Error     string
	Data      any
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, p); err != nil {
		s.log.Error("desk page failed", "page", name, "err", err)
		http.Error(w, "De pagina kon niet worden gemaakt.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// current returns the request's live session, or nil.
func (s *Server) current(r *http.Request) *session {
	c, err := r.Cookie(s.cookie)
	if err != nil {
		return nil
	}
	return s.sess.Get(c.Value)
}

func (s *Server) setCookie(w http.ResponseWriter, sess *session) {
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: sess.ID, Path: "/", HttpOnly: true, Secure: s.cfg.TLS,
		SameSite: http.SameSiteStrictMode})
}

// signedIn runs h for a signed-in desk user, after checking the CSRF token
// of a POST; anyone else goes to the sign-in page.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.current(r)
		if sess == nil || sess.User == nil {
			if r.Method == http.MethodPost {
				http.Error(w, "U bent niet (meer) ingelogd. Log opnieuw in.", http.StatusForbidden)
				return
			}
			http.Redirect(w, r, "/inloggen", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sess.ValidCSRF(r) {
				s.log.Warn("desk form refused: CSRF token missing or wrong", "desk_user", sess.User.name, "path", r.URL.Path)
				http.Error(w, "Dit formulier is verlopen of komt niet van de privacybalie. Open de pagina opnieuw.", http.StatusForbidden)
				return
			}
		}
		h(w, r, sess)
	}
}

func (s *Server) base(sess *session, title string) page {
	p := page{Title: title, CSRF: sess.CSRF}
	if sess.User != nil {
		p.User = sess.User.name
	}
	p.FlashKind, p.Flash = s.sess.TakeFlash(sess)
	return p
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	sess := s.current(r)
	if sess != nil && sess.User != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if sess == nil {
		// An anonymous session only carries the sign-in form's CSRF token.
		sess = s.sess.Create()
		s.setCookie(w, sess)
	}
	s.render(w, http.StatusOK, "inloggen.html", s.base(sess, "Inloggen"))
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	sess := s.current(r)
	if sess == nil || !sess.ValidCSRF(r) {
		s.log.Warn("desk sign-in form refused: no session or a wrong CSRF token", "session", sess != nil)
		http.Error(w, "Dit formulier is verlopen of komt niet van de privacybalie. Open de pagina opnieuw.", http.StatusForbidden)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("naam"))
	u, err := s.authenticate(name, r.PostFormValue("wachtwoord"), strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		if !errors.Is(err, ErrSignIn) {
			s.log.Error("desk sign-in failed", "err", err)
		}
		p := s.base(sess, "Inloggen")
		p.Error = "Dat lukte niet. De naam, het wachtwoord of de code klopt niet. Probeer het opnieuw."
		s.render(w, http.StatusUnauthorized, "inloggen.html", p)
		return
	}
	// A new session (and cookie) at sign-in: a session id planted before
	// sign-in is worth nothing after it.
	ns := s.sess.SignIn(sess, u)
	s.setCookie(w, ns)
	s.log.Info("desk user signed in", "desk_user", u.name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// authenticate checks the password and then the TOTP code of name. A name
// with too many recent failures is refused without a check.
func (s *Server) authenticate(name, password, code string) (*user, error) {
	now := s.now()
	s.mu.Lock()
	recent := s.failures[name][:0]
	for _, t := range s.failures[name] {
		if now.Sub(t) < failureWindow {
			recent = append(recent, t)
		}
	}
	s.failures[name] = recent
	locked := len(recent) >= maxFailures
	s.mu.Unlock()
	if locked {
		return nil, ErrSignIn
	}
	u, err := checkPassword(s.cfg.UsersFile, name, password)
	if err == nil {
		s.mu.Lock()
		step, ok := checkTOTP(u.secret, code, now, s.lastStep[name])
		if ok {
			s.lastStep[name] = step
		}
		s.mu.Unlock()
		if !ok {
			err = ErrSignIn
		}
	}
	if errors.Is(err, ErrSignIn) {
		s.mu.Lock()
		s.failures[name] = append(s.failures[name], now)
		s.mu.Unlock()
		// The name is logged only when it is a desk user's: a name field
		// may hold anything, a BSN typed in the wrong field among it.
		if _, known := s.knownUser(name); known {
			s.log.Warn("desk sign-in refused", "desk_user", name)
		} else {
			s.log.Warn("desk sign-in refused for an unknown name")
		}
		return nil, err
	}
	return u, err
}

func (s *Server) knownUser(name string) (int, bool) {
	f, err := readUsers(s.cfg.UsersFile)
	if err != nil {
		return -1, false
	}
	for i, u := range f.Users {
		if u.Name == name {
			return i, true
		}
	}
	return -1, false
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request, sess *session) {
	s.sess.Drop(sess.ID)
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.TLS, SameSite: http.SameSiteStrictMode})
	s.log.Info("desk user signed out", "desk_user", sess.User.name)
	http.Redirect(w, r, "/inloggen", http.StatusSeeOther)
}

// ledgerFailed shows a refusal or failure of the ledger in Dutch.
func (s *Server) ledgerFailed(w http.ResponseWriter, sess *session, err error) {
	p := s.base(sess, "Er ging iets mis")
	status := http.StatusBadGateway
	var le *LedgerError
	switch {
	case errors.As(err, &le) && le.Status == http.StatusNotFound:
		status, p.Error = http.StatusNotFound, "Dit verzoek bestaat niet, of het hoort niet bij uw balie."
	case errors.As(err, &le) && le.Code == "second_person_required":
		status, p.Error = http.StatusForbidden, "U heeft dit verzoek zelf ingediend. Een tweede medewerker moet het antwoord vrijgeven."
	case errors.As(err, &le) && le.Code == "already_released":
		status, p.Error = http.StatusConflict, "Dit verzoek is al vrijgegeven."
	case errors.As(err, &le) && le.Code == "young_person_16_plus":
		status, p.Error = http.StatusConflict, "Het kind is 16 jaar of ouder. Dan vraagt de jongere zelf om inzage. "+
			"Een ouder of voogd krijgt het antwoord alleen als de jongere toestemming geeft. "+
			"Leg die toestemming vast met spoor inzage release --young-person-consent; dit scherm kan dat nog niet."
	case errors.As(err, &le) && le.Code == "no_scope":
		status, p.Error = http.StatusForbidden, "Uw account bij het logboek hoort bij geen enkele partij van het convenant. Vraag de beheerder om hulp."
	case errors.As(err, &le) && le.Status == http.StatusServiceUnavailable:
		status, p.Error = http.StatusServiceUnavailable, "Het logboek kan het antwoord nu nog niet geven. Probeer het over een paar minuten opnieuw."
	case errors.As(err, &le) && le.Status == http.StatusTooManyRequests:
		status, p.Error = http.StatusTooManyRequests, "U heeft veel verzoeken kort na elkaar gedaan. Wacht even en probeer het opnieuw."
	case errors.As(err, &le):
		status, p.Error = http.StatusBadGateway, "Het logboek weigerde dit. Vraag de beheerder om hulp."
		s.log.Warn("the ledger refused a desk request", "desk_user", sess.User.name, "status", le.Status, "code", le.Code)
	default:
		p.Error = "Het logboek is niet bereikbaar. Probeer het later opnieuw."
		s.log.Error("desk couldn't reach the ledger", "desk_user", sess.User.name, "err", err)
	}
	s.render(w, status, "fout.html", p)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, sess *session) {
	data, _, err := s.ledgerCall(r.Context(), sess.User, "GET", "/v1/inzage", nil)
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	var l deskapi.InzageList
	if err := json.Unmarshal(data, &l); err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	// Newest first: the desk works on what came in last.
	for i, j := 0, len(l.Requests)-1; i < j; i, j = i+1, j-1 {
		l.Requests[i], l.Requests[j] = l.Requests[j], l.Requests[i]
	}
	p := s.base(sess, "Inzageverzoeken")
	p.Data = l.Requests
	s.render(w, http.StatusOK, "lijst.html", p)
}

// registerForm is what the form shows again after a mistake: never the
// number that was typed.
type registerForm struct {
	IDType, Relation string
	Child16OrOlder   bool
}

func (s *Server) newPage(w http.ResponseWriter, r *http.Request, sess *session) {
	p := s.base(sess, "Nieuw inzageverzoek")
	p.Data = registerForm{IDType: string(events.IDTypeBSN)}
	s.render(w, http.StatusOK, "nieuw.html", p)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, sess *session) {
	form := registerForm{IDType: r.PostFormValue("soort"), Relation: r.PostFormValue("relatie"), Child16OrOlder: r.PostFormValue("zestien") == "ja"}
	again := func(msg string) {
		p := s.base(sess, "Nieuw inzageverzoek")
		p.Error, p.Data = msg, form
		s.render(w, http.StatusUnprocessableEntity, "nieuw.html", p)
	}
	idType := events.IDType(form.IDType)
	if idType != events.IDTypeBSN && idType != events.IDTypeOnderwijsnummer {
		again("Kies of u een BSN of een onderwijsnummer invult.")
		return
	}
	switch form.Relation {
	case verifier.RelationParent, verifier.RelationGuardian:
		if form.Child16OrOlder {
			again("Vanaf 16 jaar vraagt de jongere zelf. Een ouder of voogd kan dan niet vragen.")
			return
		}
	case verifier.RelationYoungPerson:
		if !form.Child16OrOlder {
			again("Een kind onder de 16 vraagt via een ouder met gezag of een voogd.")
			return
		}
	default:
		again("Kies wie het verzoek doet.")
		return
	}
	// The number: spaces and dots that people type are dropped; it is
	// checked, turned into pseudonyms and forgotten.
	number := strings.NewReplacer(" ", "", ".", "", "-", "").Replace(r.PostFormValue("nummer"))
	if err := events.CheckNumber(idType, number); err != nil {
		if idType == events.IDTypeBSN {
			again("Dit BSN klopt niet: het heeft geen 9 cijfers of de elfproef klopt niet. Typ het opnieuw.")
		} else {
			again("Dit onderwijsnummer klopt niet. Typ het opnieuw.")
		}
		return
	}
	req := deskapi.InzageRegisterRequest{IDType: idType, Relation: form.Relation, Child16OrOlder: form.Child16OrOlder}
	for _, k := range s.cfg.SubjectKeys {
		p, err := events.Pseudonym(k, idType, number)
		if err != nil {
			again("Dit nummer klopt niet. Typ het opnieuw.")
			return
		}
		req.Pseudonyms = append(req.Pseudonyms, verifier.SubjectPseudonym{KeyID: k.ID, Pseudonym: p})
	}
	number = ""
	data, _, err := s.ledgerCall(r.Context(), sess.User, "POST", "/v1/inzage", req)
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	var st deskapi.InzageStatus
	if err := json.Unmarshal(data, &st); err != nil || !events.ValidEventID(st.ID) {
		s.ledgerFailed(w, sess, errors.Join(errors.New("the ledger's answer has no request id"), err))
		return
	}
	s.log.Info("inzage request registered at the desk", "request_id", st.ID, "desk_user", sess.User.name)
	s.sess.SetFlash(sess, "ok", "Het verzoek is vastgelegd. Een tweede medewerker geeft het antwoord vrij.")
	// See Other: the browser's next request is a GET, so that reloading
	// the page never sends the form (and the number) again.
	http.Redirect(w, r, "/verzoek/"+st.ID, http.StatusSeeOther)
}

// requestView is the request page's data.
type requestView struct {
	deskapi.InzageStatus
	// Mine is true when the signed-in desk user registered it: they may
	// not release it.
	Mine      bool
	Released  bool
	Grounds   []string
	HasReport bool
	// Preview is what the answer would show if released now (nil once
	// released, or when the ledger cannot say yet: PreviewError).
	Preview      *deskapi.InzagePreview
	PreviewError string
	// Withheld are the leaf indices ticked, with their grounds, when the
	// form comes back with a mistake.
	Withheld map[uint64]string
}

// preview fetches what a registered request's answer would show.
func (s *Server) preview(ctx context.Context, sess *session, id string) (*deskapi.InzagePreview, string) {
	path, ok := requestPath(id, "preview")
	if !ok {
		return nil, "Dit verzoek bestaat niet."
	}
	data, _, err := s.ledgerCall(ctx, sess.User, "GET", path, nil)
	var le *LedgerError
	switch {
	case errors.As(err, &le) && le.Status == http.StatusServiceUnavailable:
		return nil, "Het logboek kan de meldingen nu nog niet tonen. Laad de pagina over een paar minuten opnieuw."
	case err != nil:
		s.log.Warn("desk couldn't preview an answer", "request_id", id, "desk_user", sess.User.name, "err", err)
		return nil, "De meldingen konden niet worden opgehaald. Laad de pagina opnieuw."
	}
	var pv deskapi.InzagePreview
	if err := json.Unmarshal(data, &pv); err != nil {
		s.log.Error("desk got a preview it cannot read", "request_id", id, "err", err)
		return nil, "De meldingen konden niet worden gelezen."
	}
	return &pv, ""
}

func (s *Server) requestView(ctx context.Context, sess *session, st *deskapi.InzageStatus) requestView {
	v := requestView{InzageStatus: *st, Mine: st.RequestedBy == sess.User.name, Released: st.Status == deskapi.AccessReleased,
		Grounds: verifier.WithholdGrounds(), HasReport: s.keys != nil}
	if !v.Released {
		v.Preview, v.PreviewError = s.preview(ctx, sess, st.ID)
	}
	return v
}

func (s *Server) status(ctx context.Context, sess *session, id string) (*deskapi.InzageStatus, error) {
	path, ok := requestPath(id)
	if !ok {
		return nil, &LedgerError{Status: http.StatusNotFound, Code: "not_found"}
	}
	data, _, err := s.ledgerCall(ctx, sess.User, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	var st deskapi.InzageStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (s *Server) request(w http.ResponseWriter, r *http.Request, sess *session) {
	st, err := s.status(r.Context(), sess, r.PathValue("id"))
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	p := s.base(sess, "Inzageverzoek")
	p.Data = s.requestView(r.Context(), sess, st)
	s.render(w, http.StatusOK, "verzoek.html", p)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	path, ok := requestPath(id, "release")
	if !ok {
		s.ledgerFailed(w, sess, &LedgerError{Status: http.StatusNotFound})
		return
	}
	// The form has a box per previewed disclosure (achterhouden, its leaf
	// index as value) and a ground per disclosure (grond-<index>).
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Het formulier klopt niet.", http.StatusBadRequest)
		return
	}
	var req deskapi.InzageReleaseRequest
	ticked := map[uint64]string{}
	problem := ""
	for _, v := range r.PostForm["achterhouden"] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			problem = "Het formulier klopt niet. Laad de pagina opnieuw."
			continue
		}
		ground := r.PostFormValue("grond-" + v)
		ticked[n] = ground
		if !verifier.ValidWithholdGround(ground) {
			problem = "Kies bij elke melding die u achterhoudt een grond."
			continue
		}
		req.Withheld = append(req.Withheld, deskapi.Withhold{Index: n, Ground: ground})
	}
	for k, vs := range r.PostForm {
		idx, ok := strings.CutPrefix(k, "grond-")
		if !ok || len(vs) == 0 || vs[0] == "" {
			continue
		}
		if n, err := strconv.ParseUint(idx, 10, 64); err != nil || ticked[n] == "" && !slices.Contains(r.PostForm["achterhouden"], idx) {
			problem = "U koos een grond bij een melding die u niet aanvinkte. Vink de melding aan, of kies geen grond."
		}
	}
	if problem != "" {
		st, serr := s.status(r.Context(), sess, id)
		if serr != nil {
			s.ledgerFailed(w, sess, serr)
			return
		}
		p := s.base(sess, "Inzageverzoek")
		p.Error = problem
		v := s.requestView(r.Context(), sess, st)
		v.Withheld = ticked
		p.Data = v
		s.render(w, http.StatusUnprocessableEntity, "verzoek.html", p)
		return
	}
	_, hdr, err := s.ledgerCall(r.Context(), sess.User, "POST", path, req)
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	s.log.Info("inzage answer released at the desk", "request_id", id, "desk_user", sess.User.name, "withheld", len(req.Withheld))
	msg := "Het antwoord is vrijgegeven. U kunt het nu downloaden."
	kind := "ok"
	if hdr.Get(deskapi.WarningHeader) != "" {
		kind = "fout"
		msg += " Let op: in een vrij tekstveld staat mogelijk een BSN. Kijk het antwoord na voordat u het verstuurt."
	}
	s.sess.SetFlash(sess, kind, msg)
	http.Redirect(w, r, "/verzoek/"+id, http.StatusSeeOther)
}

// download fetches the bundle of a released request from the ledger: the
// same bytes as at release.
func (s *Server) download(ctx context.Context, sess *session, id string) ([]byte, error) {
	path, ok := requestPath(id, "bundle")
	if !ok {
		return nil, &LedgerError{Status: http.StatusNotFound}
	}
	data, _, err := s.ledgerCall(ctx, sess.User, "GET", path, nil)
	return data, err
}

func (s *Server) bundle(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	data, err := s.download(r.Context(), sess, id)
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="inzage-`+id+`.json"`)
	_, _ = w.Write(data)
}

func (s *Server) report(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	if s.keys == nil {
		p := s.base(sess, "Geen rapport")
		p.Error = "Deze balie heeft de sleutels van het logboek niet. Zonder die sleutels maakt de balie geen rapport."
		s.render(w, http.StatusNotFound, "fout.html", p)
		return
	}
	data, err := s.download(r.Context(), sess, id)
	if err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	vb, err := verifier.VerifyBundle(data, s.keys, s.cfg.AdminVkey)
	if err != nil {
		s.log.Error("a bundle from the ledger does not verify", "request_id", id, "desk_user", sess.User.name, "err", err)
		p := s.base(sess, "Antwoord klopt niet")
		p.Error = "Het antwoord van het logboek klopt niet met de sleutels van deze balie. Verstuur het niet en meld dit bij de FG."
		s.render(w, http.StatusBadGateway, "fout.html", p)
		return
	}
	var buf bytes.Buffer
	// The report names the bundle by the file name the desk's download
	// of it carries (the bundle handler's Content-Disposition).
	if err := report.WriteInzage(&buf, vb, report.WithBundleFile("inzage-"+id+".json")); err != nil {
		s.ledgerFailed(w, sess, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="inzage-`+id+`.html"`)
	_, _ = w.Write(buf.Bytes())
}

func relationText(rel string) string { return report.RelationLabel(rel) }
func groundText(g string) string     { return report.WithholdGroundLabel(g) }

func statusText(st string) string {
	switch st {
	case deskapi.AccessRegistered:
		return "Wacht op vrijgave"
	case deskapi.AccessReleased:
		return "Vrijgegeven"
	}
	return st
}
