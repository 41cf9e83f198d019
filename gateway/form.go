package gateway

// The recording form: a small Dutch web page, served by the gateway at
// /formulier/, for a professional of an organisation that has no system of
// its own to connect (a disclosure made at an MDO or by phone). The
// professional signs in with a token of the gateway's tokens file, which
// names the party; picks purpose, legal basis, categories and recipients
// from the covenant in force; types the subject's BSN or onderwijsnummer;
// and gets the receipt and the covenant's findings in Dutch. The form goes
// through the same steps as a POST to /v1/disclosures (record): the number
// is pseudonymised here and goes no further, is never shown again (not
// even on a refused form) and never logged. The pages carry no script,
// every POST needs the session's CSRF token and a same-origin request
// (internal/websession), and the actor's pseudonymous staff id is derived
// from the signed-in user, never typed.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/websession"
)

// FormPath is where the recording form is served when Config.Form is set.
const FormPath = "/formulier/"

// Form sessions: a professional records a few disclosures after a meeting
// or a call; an hour of idling or a working day signs them out.
const (
	formIdle     = time.Hour
	formAbsolute = 10 * time.Hour
	formCookie   = "spoor_formulier"
)

//go:embed form/*.html form/*.css
var formFiles embed.FS

var formTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"has": func(list []string, s string) bool { return slices.Contains(list, s) },
}).ParseFS(formFiles, "form/*.html"))

// formUser is who signed in: the client of a token.
type formUser struct{ Client Client }

// form is the recording form's handler state.
type form struct {
	g    *Gateway
	sess *websession.Store[*formUser]
	ams  *time.Location
}

func newForm(g *Gateway) *form {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		// Without the time zone database the form shows and reads UTC.
		ams = time.UTC
	}
	return &form{g: g, sess: websession.NewStore[*formUser](formIdle, formAbsolute, time.Now), ams: ams}
}

func (f *form) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+FormPath, f.page)
	mux.HandleFunc("POST "+FormPath+"inloggen", f.signIn)
	mux.HandleFunc("POST "+FormPath+"vastleggen", f.submit)
	mux.HandleFunc("POST "+FormPath+"uitloggen", f.signOut)
	mux.HandleFunc("GET "+FormPath+"formulier.css", func(w http.ResponseWriter, r *http.Request) {
		b, _ := formFiles.ReadFile("form/formulier.css")
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = w.Write(b)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		websession.SetSecurityHeaders(w.Header())
		if r.Method == http.MethodPost && !websession.SameOrigin(r, r.TLS != nil) {
			http.Error(w, "Dit formulier komt niet van deze gateway.", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// current returns the request's live session, nil if none.
func (f *form) current(r *http.Request) *websession.Session[*formUser] {
	c, err := r.Cookie(formCookie)
	if err != nil {
		return nil
	}
	return f.sess.Get(c.Value)
}

func (f *form) setCookie(w http.ResponseWriter, r *http.Request, s *websession.Session[*formUser]) {
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: s.ID, Path: FormPath, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// formValues are the choices of a filled-in form, shown again when the
// form is refused: everything but the number.
type formValues struct {
	Key           string
	Purpose       string
	Ground        string
	Exception     string
	Statute       string
	Categories    []string
	Recipients    []string
	IDType        string
	AgeBand       string
	Channel       string
	Role          string
	ConsentBy     string
	ConsentRef    string
	Justification string
	Activity      string
	OccurredAt    string
}

// formPage is what the templates get.
type formPage struct {
	CSRF     string
	User     *Client
	Party    string
	Cov      *events.Covenant
	Failed   bool
	V        formValues
	Problems []formProblem
	Result   *formResult
}

type formProblem struct{ Field, Text string }

// formFinding is a covenant finding in Dutch: the rule's label and what
// of the form it is about.
type formFinding struct{ Rule, Label, About string }

type formResult struct {
	Status        string
	EventID       string
	LeafIndex     string
	TreeSize      uint64
	Checkpoint    string
	EnvelopeHash  string
	Findings      []formFinding
	PendingReason string
}

// The channels a professional without a system records, with their Dutch
// words.
var formChannels = []struct{ ID, Label string }{
	{"mdo", "In een multidisciplinair overleg (MDO)"},
	{"phone", "Telefonisch"},
	{"in-person", "In een gesprek"},
	{"email", "Per e-mail"},
	{"letter", "Per brief"},
}

var formAgeBands = []struct {
	ID    events.AgeBand
	Label string
}{{events.AgeUnder12, "Jonger dan 12"}, {events.Age12To15, "12 tot en met 15"}, {events.Age16Plus, "16 of ouder"}}

var formConsentGivers = []struct {
	ID    events.ConsentGiver
	Label string
}{{events.ConsentParents, "De ouders"}, {events.ConsentChildAndParents, "Het kind en de ouders"}, {events.ConsentYoungPerson, "De jongere zelf"}}

func (f *form) render(w http.ResponseWriter, status int, name string, p *formPage) {
	p.Cov = f.g.covenant()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	data := struct {
		*formPage
		Channels      any
		AgeBands      any
		ConsentGivers any
		Parties       []events.Party
		PartyName     string
	}{formPage: p, Channels: formChannels, AgeBands: formAgeBands, ConsentGivers: formConsentGivers}
	for _, pt := range p.Cov.Parties {
		if p.User == nil || pt.ID != p.User.Party {
			data.Parties = append(data.Parties, pt)
		}
	}
	if p.User != nil {
		data.PartyName = p.Cov.PartyName(p.User.Party)
	}
	if err := formTemplates.ExecuteTemplate(w, name, data); err != nil {
		f.g.log.Error("form: couldn't render", "page", name, "err", err)
	}
}

// page is GET /formulier/: the sign-in form, or the recording form.
func (f *form) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != FormPath {
		http.NotFound(w, r)
		return
	}
	s := f.current(r)
	if s == nil || s.User == nil {
		if s == nil {
			s = f.sess.Create()
			f.setCookie(w, r, s)
		}
		f.render(w, http.StatusOK, "inloggen.html", &formPage{CSRF: s.CSRF, Failed: r.URL.Query().Has("mislukt")})
		return
	}
	now := f.g.cfg.Now().In(f.ams)
	f.render(w, http.StatusOK, "formulier.html", &formPage{CSRF: s.CSRF, User: &s.User.Client, V: formValues{
		Key: websession.RandomText(), IDType: string(events.IDTypeBSN), Channel: "mdo",
		Activity: "gegevensverstrekking-samenwerking", OccurredAt: now.Format("2006-01-02T15:04"),
	}})
}

// signIn is POST /formulier/inloggen with a token of the tokens file.
func (f *form) signIn(w http.ResponseWriter, r *http.Request) {
	s := f.current(r)
	if s == nil || !s.ValidCSRF(r) {
		http.Error(w, "Het formulier is verlopen; laad de pagina opnieuw.", http.StatusForbidden)
		return
	}
	c, ok := f.g.cfg.Clients[TokenHash(strings.TrimSpace(r.PostFormValue("token")))]
	if !ok || r.PostFormValue("token") == "" {
		f.g.metrics.problem(ProblemUnauthorized)
		http.Redirect(w, r, FormPath+"?mislukt", http.StatusSeeOther)
		return
	}
	f.g.log.Info("form sign-in", "client", c.Name, "party", c.Party)
	f.setCookie(w, r, f.sess.SignIn(s, &formUser{Client: c}))
	http.Redirect(w, r, FormPath, http.StatusSeeOther)
}

func (f *form) signOut(w http.ResponseWriter, r *http.Request) {
	if s := f.current(r); s != nil && s.ValidCSRF(r) {
		f.sess.Drop(s.ID)
	}
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: "", Path: FormPath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, FormPath, http.StatusSeeOther)
}

// StaffID is the actor's pseudonymous staff id of a form user: an HMAC of
// the user's name under the party's salt secret, so that the same person
// gets the same id on every gateway of the party, the ledger never learns
// the name, and nobody types (or mistypes) an id.
func StaffID(key *events.PartyKey, user string) string {
	m := hmac.New(sha256.New, key.SaltSecret)
	m.Write([]byte("spoor formulier medewerker\x00" + user))
	return "mw-" + hex.EncodeToString(m.Sum(nil)[:10])
}

// submit is POST /formulier/vastleggen: the disclosure, recorded as a POST
// to /v1/disclosures would be, and the receipt or the problems shown.
func (f *form) submit(w http.ResponseWriter, r *http.Request) {
	s := f.current(r)
	if s == nil || s.User == nil {
		http.Redirect(w, r, FormPath, http.StatusSeeOther)
		return
	}
	if !s.ValidCSRF(r) {
		http.Error(w, "Het formulier is verlopen; laad de pagina opnieuw.", http.StatusForbidden)
		return
	}
	c := s.User.Client
	party := f.g.parties[c.Party]
	v := formValues{
		Key: r.PostFormValue("sleutel"), Purpose: r.PostFormValue("doel"), Ground: r.PostFormValue("grondslag"),
		Exception: r.PostFormValue("uitzondering"), Statute: r.PostFormValue("wet"), Categories: r.PostForm["categorie"],
		Recipients: r.PostForm["ontvanger"], IDType: r.PostFormValue("soort"), AgeBand: r.PostFormValue("leeftijd"),
		Channel: r.PostFormValue("kanaal"), Role: r.PostFormValue("rol"), ConsentBy: r.PostFormValue("toestemming"),
		ConsentRef: r.PostFormValue("kenmerk"), Justification: r.PostFormValue("toelichting"),
		Activity: r.PostFormValue("activiteit"), OccurredAt: r.PostFormValue("tijdstip"),
	}
	page := &formPage{CSRF: s.CSRF, User: &c, V: v}
	refuse := func(ps ...formProblem) {
		page.Problems = ps
		f.render(w, http.StatusUnprocessableEntity, "formulier.html", page)
	}
	if v.Key == "" || len(v.Key) > events.MaxIdempotencyKeyLen || !printableASCII(v.Key) {
		page.V.Key = websession.RandomText()
		refuse(formProblem{"", "Het formulier is verlopen; vul het opnieuw in."})
		return
	}
	occurred, err := time.ParseInLocation("2006-01-02T15:04", v.OccurredAt, f.ams)
	if err != nil {
		refuse(formProblem{"tijdstip", "Vul datum en tijd van de verstrekking in."})
		return
	}
	in := Input{
		TraceID: randomHex(16), SpanID: randomHex(8), ProcessingActivity: v.Activity,
		OccurredAt: occurred.UTC(), Recipients: v.Recipients,
		Subject:        InputSubject{IDType: events.IDType(v.IDType), Number: strings.TrimSpace(r.PostFormValue("nummer"))},
		SubjectAgeBand: events.AgeBand(v.AgeBand), Categories: v.Categories, Purpose: v.Purpose,
		LegalBasis:    events.LegalBasis{Ground: v.Ground, Exception: v.Exception, Statute: v.Statute},
		Justification: v.Justification, Channel: v.Channel,
		Actor: events.Actor{Role: v.Role, StaffID: StaffID(party.key, c.Name)},
	}
	if v.ConsentBy != "" {
		in.Consent = &events.Consent{Reference: v.ConsentRef, GivenBy: events.ConsentGiver(v.ConsentBy)}
	}
	body, err := json.Marshal(in)
	if err != nil {
		refuse(formProblem{"", "Het formulier kon niet worden verwerkt."})
		return
	}
	log := f.g.log.With("client", c.Name, "party", c.Party, "via", "form")
	ps, p := f.g.record(r.Context(), log, party, c, "formulier/"+v.Key, []Line{{N: 1, Bytes: body}}, false)
	clear(body) // the JSON held the number
	if p != nil {
		f.g.metrics.problem(p.Code)
		log.Info("form refused", "problem", p.Code, "fields_at_fault", len(p.Errors))
		var out []formProblem
		for _, fe := range p.Errors {
			out = append(out, formProblem{fe.Field, problemNL(fe)})
		}
		if len(out) == 0 {
			out = append(out, formProblem{"", problemTitleNL(p)})
		}
		refuse(out...)
		return
	}
	res := ps[0].result
	f.g.metrics.results.WithLabelValues(string(res.Status)).Inc()
	log.Info("form recorded", "event_id", res.EventID, "status", res.Status)
	fr := &formResult{EventID: res.EventID, TreeSize: res.TreeSize, Checkpoint: res.Checkpoint,
		EnvelopeHash: res.EnvelopeSHA256}
	for _, fd := range res.Findings {
		fr.Findings = append(fr.Findings, formFinding{Rule: fd.Rule, Label: events.FindingLabelNL(fd.Rule), About: f.about(fd.Field, v)})
	}
	if res.LeafIndex != nil {
		fr.LeafIndex = fmt.Sprint(*res.LeafIndex)
	}
	switch res.Status {
	case natsbus.ReceiptCommitted:
		fr.Status = "Vastgelegd"
	case natsbus.ReceiptPending:
		fr.Status = "Aangeboden, nog niet vastgelegd"
		fr.PendingReason = "Het grootboek heeft de verstrekking nog niet bevestigd. Verstuur het formulier later opnieuw (zonder iets te wijzigen): dezelfde verstrekking wordt dan niet dubbel vastgelegd."
	case natsbus.ReceiptIDConflict:
		refuse(formProblem{"", "Onder dit formulier is al een andere verstrekking vastgelegd. Open een nieuw formulier."})
		return
	default:
		refuse(formProblem{"", "Het grootboek heeft de verstrekking geweigerd (" + string(res.Reason) + ")."})
		return
	}
	page.Result = fr
	f.render(w, http.StatusOK, "ontvangen.html", page)
}

// about names in Dutch what of the form a finding's field is: the
// category or recipient picked, or the part of the form.
func (f *form) about(field string, v formValues) string {
	cov := f.g.covenant()
	var i int
	switch {
	case sscan(field, "categories[%d]", &i) && i < len(v.Categories):
		return cov.CategoryLabel(v.Categories[i])
	case sscan(field, "recipients[%d]", &i) && i < len(v.Recipients):
		return cov.PartyName(v.Recipients[i])
	case strings.HasPrefix(field, "consent"):
		return "Toestemming"
	case strings.HasPrefix(field, "legal_basis"):
		return "Grondslag"
	case field == "purpose":
		return "Doel"
	case field == "actor.role":
		return "Uw functie"
	case field == "justification":
		return "Toelichting"
	}
	return ""
}

// sscan reports whether s is exactly format with one number.
func sscan(s, format string, i *int) bool {
	n, err := fmt.Sscanf(s, format, i)
	return err == nil && n == 1 && fmt.Sprintf(format, *i) == s
}

// problemNL says in Dutch what is wrong with a field; the English detail
// of events' validation where no Dutch text is known.
func problemNL(fe *FieldError) string {
	switch {
	case fe.Code == CodeInvalidNumber:
		return "Het nummer klopt niet: het moet 9 cijfers hebben en de elfproef doorstaan."
	case fe.Code == CodeOtherParty:
		return "U legt alleen verstrekkingen van uw eigen organisatie vast."
	case fe.Field == "recipients" || strings.HasPrefix(fe.Field, "recipients["):
		return "Kies ten minste één ontvanger."
	case fe.Field == "categories" || strings.HasPrefix(fe.Field, "categories["):
		return "Kies ten minste één soort gegevens uit het convenant."
	case fe.Field == "purpose":
		return "Kies een doel uit het convenant."
	case fe.Field == "legal_basis.ground":
		return "Kies een grondslag."
	case fe.Field == "justification":
		return "Schrijf kort op waarom de gegevens nodig waren."
	case fe.Field == "actor.role":
		return "Kies uw functie."
	case fe.Field == "subject_age_band":
		return "Kies de leeftijd van het kind."
	case fe.Field == "occurred_at":
		return "Het tijdstip ligt in de toekomst of is ongeldig."
	case strings.HasPrefix(fe.Field, "consent"):
		return "Vul bij toestemming ook het kenmerk in (waar de toestemming is vastgelegd)."
	}
	return fe.Detail
}

func problemTitleNL(p *Problem) string {
	switch p.Code {
	case ProblemIdempotencyConflict:
		return "Onder dit formulier is al een andere verstrekking vastgelegd. Open een nieuw formulier."
	case ProblemBusUnavailable, ProblemLedgerUnavailable:
		return "Het grootboek is nu niet bereikbaar. Verstuur het formulier later opnieuw; het wordt niet dubbel vastgelegd."
	}
	return "De verstrekking is niet vastgelegd: " + p.Detail
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
