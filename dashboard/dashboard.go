// Package dashboard is the FG's console (`spoor dashboard`): Dutch web
// pages on the FG's own machine that show what the FG's own audit of the
// ledger verified, not what the operator's pages say.
//
// Data flows one way. The console reads the ledger over its HTTP API with
// the FG's bearer token (verifier/audit's HTTPSource) and runs the whole
// audit (audit.Run) with the keys the FG pinned, at start, on the button
// and every Interval; it keeps the last report and the disclosures that
// broke a rule (audit.Config.OnFinding) in memory and serves them on
// loopback: health, counts per organisation (organisations without any
// disclosure too), the findings filterable by organisation and rule with a
// CSV export, the answers with their withholdings and grounds, and the
// erasures. Nothing is written to disk but the password file.
//
// The console holds the discloser's own words (a finding's justification):
// every such string is escaped in HTML (html/template) and neutralised in
// CSV (a cell starting with = + - @ gets a leading quote). The pages allow
// no script at all (Content-Security-Policy), answer only to the Host names
// configured (DNS rebinding), and every form carries a CSRF token.
package dashboard

import (
	"context"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/spoor-ledger/spoor/internal/websession"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// Config configures the console. LedgerURL, Token, Keys, PasswordFile and
// Hosts are required; the zero value of every other field is a default.
type Config struct {
	// LedgerURL is the ledger's HTTP address; Token the FG's bearer token.
	LedgerURL, Token string
	// HTTPClient calls the ledger; nil means a five-minute timeout.
	HTTPClient *http.Client
	// Keys are the pinned log and cosigner keys; AdminVkey the pinned
	// covenant administrator key (empty: version 1's own, as the audit
	// says).
	Keys      *verifier.LogKeys
	AdminVkey string
	// PasswordFile is the FG's Argon2id password file (SetPassword).
	PasswordFile string
	// Hosts are the Host header values the console answers to.
	Hosts []string
	// Interval re-runs the audit this often; 0 means only at start and on
	// the button.
	Interval time.Duration
	// IdleTimeout signs the FG out after this long without a request; 0
	// means 15 minutes. A session ends after 8 hours whatever happens.
	IdleTimeout time.Duration
	// Logger; nil discards. Log lines hold no sender-written text.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the console.
type Server struct {
	cfg   Config
	src   *audit.HTTPSource
	log   *slog.Logger
	now   func() time.Time
	sess  *websession.Store[bool]
	pages *template.Template
	mux   *http.ServeMux
	kick  chan struct{}

	mu       sync.Mutex
	rep      *audit.Report
	findings []audit.FindingDisclosure
	// verifiedAt is when the last audit that ran to its end finished;
	// lastErr is why the newest attempt failed, if it did.
	verifiedAt time.Time
	lastErr    string
	running    bool
}

const cookieName = "spoor-dashboard"

//go:embed templates/*.html static/console.css
var assets embed.FS

// New checks cfg and returns the console.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.LedgerURL == "" || cfg.Token == "":
		return nil, errors.New("dashboard: the ledger's URL and the FG's token are required")
	case cfg.Keys == nil:
		return nil, errors.New("dashboard: the pinned log and cosigner keys are required")
	case cfg.PasswordFile == "":
		return nil, errors.New("dashboard: the password file is required")
	case len(cfg.Hosts) == 0:
		return nil, errors.New("dashboard: the Host names the console answers to are required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, kick: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	s.src = &audit.HTTPSource{URL: cfg.LedgerURL, Token: cfg.Token, HTTP: client}
	s.sess = websession.NewStore[bool](cfg.IdleTimeout, 8*time.Hour, s.now)
	var err error
	s.pages, err = template.New("").Funcs(template.FuncMap{
		"when": when, "rule": events.FindingLabelNL, "withhold": report.WithholdGroundLabel,
		"erasureGround": report.ErasureGroundLabel, "relation": report.RelationLabel, "join": strings.Join,
	}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /static/console.css", s.css)
	s.mux.HandleFunc("GET /inloggen", s.signInPage)
	s.mux.HandleFunc("POST /inloggen", s.signIn)
	s.mux.HandleFunc("POST /uitloggen", s.signedIn(s.signOut))
	s.mux.HandleFunc("POST /verifieren", s.signedIn(s.verifyNow))
	s.mux.HandleFunc("GET /{$}", s.signedIn(s.overview))
	s.mux.HandleFunc("GET /bevindingen", s.signedIn(s.findingsPage))
	s.mux.HandleFunc("GET /bevindingen.csv", s.signedIn(s.findingsCSV))
	s.mux.HandleFunc("GET /antwoorden", s.signedIn(s.answersPage))
	return s, nil
}

// Handler returns the console's pages behind the checks every request
// passes.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No script at all: whatever a discloser wrote cannot run here.
	websession.SetSecurityHeaders(h)
	if !slices.Contains(s.cfg.Hosts, r.Host) {
		// Another site opened in the FG's browser could otherwise reach
		// the console under a name that resolves to loopback.
		s.log.Warn("dashboard request refused: unknown Host header", "path", r.URL.Path)
		http.Error(w, "Onbekende host.", http.StatusMisdirectedRequest)
		return
	}
	if r.Method == http.MethodPost && !websession.SameOrigin(r, false) {
		http.Error(w, "Dit formulier komt niet van de console.", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Run audits at once, then on every press of the button and every
// Interval, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if s.cfg.Interval > 0 {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		s.Refresh(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		case <-s.kick:
		}
	}
}

// Refresh runs the whole audit once and, when it ran to its end, keeps its
// report and findings; a failed attempt keeps the last good ones and says
// why it failed.
func (s *Server) Refresh(ctx context.Context) {
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	var found []audit.FindingDisclosure
	start := time.Now()
	rep, err := audit.Run(ctx, s.src, audit.Config{Keys: s.cfg.Keys, AdminVkey: s.cfg.AdminVkey, Now: s.now,
		OnFinding: func(f audit.FindingDisclosure) { found = append(found, f) }})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	if err != nil {
		s.lastErr = err.Error()
		s.log.Warn("dashboard audit failed", "err", err)
		return
	}
	s.rep, s.findings, s.verifiedAt, s.lastErr = rep, found, s.now(), ""
	s.log.Info("dashboard audit done", "tree_size", rep.TreeSize, "ok", rep.OK, "findings", len(found), "seconds", time.Since(start).Seconds())
}

// state is what the pages show: one consistent snapshot.
type state struct {
	Report     *audit.Report
	Findings   []audit.FindingDisclosure
	VerifiedAt time.Time
	LastErr    string
	Running    bool
}

func (s *Server) snapshot() state {
	s.mu.Lock()
	defer s.mu.Unlock()
	return state{Report: s.rep, Findings: s.findings, VerifiedAt: s.verifiedAt, LastErr: s.lastErr, Running: s.running}
}

// filter returns the findings of organisation org (discloser; empty: all)
// that broke rule (empty: any).
func filter(fs []audit.FindingDisclosure, org, rule string) []audit.FindingDisclosure {
	var out []audit.FindingDisclosure
	for _, f := range fs {
		if (org == "" || f.Discloser == org) && (rule == "" || slices.Contains(f.Rules, rule)) {
			out = append(out, f)
		}
	}
	return out
}

// csvCell neutralises a cell a spreadsheet would read as a formula.
func csvCell(v string) string {
	if v != "" && strings.ContainsAny(v[:1], "=+-@\t\r") {
		return "'" + v
	}
	return v
}

func (s *Server) findingsCSV(w http.ResponseWriter, r *http.Request, _ *session) {
	st := s.snapshot()
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="bevindingen.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"leaf", "organisatie", "ontvangers", "doel", "categorieen", "regels", "convenantversie", "plaatsgevonden", "vastgelegd", "toelichting"})
	for _, f := range filter(st.Findings, q.Get("organisatie"), q.Get("regel")) {
		row := []string{fmt.Sprint(f.Leaf), f.Discloser, strings.Join(f.Recipients, " "), f.Purpose, strings.Join(f.Categories, " "),
			strings.Join(f.Rules, " "), fmt.Sprint(f.CovenantVersion), f.OccurredAt.Format(time.RFC3339), f.IntegratedAt.Format(time.RFC3339), f.Justification}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		s.log.Warn("dashboard: writing the CSV", "err", err)
	}
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, ss *session) {
	s.render(w, "overzicht.html", ss, s.snapshot(), nil)
}

func (s *Server) answersPage(w http.ResponseWriter, r *http.Request, ss *session) {
	s.render(w, "antwoorden.html", ss, s.snapshot(), nil)
}

func (s *Server) findingsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	st := s.snapshot()
	q := r.URL.Query()
	org, rule := q.Get("organisatie"), q.Get("regel")
	s.render(w, "bevindingen.html", ss, st, map[string]any{
		"Org": org, "Rule": rule, "Rows": filter(st.Findings, org, rule), "Rules": events.FindingRules(),
		"CSV": "/bevindingen.csv?" + r.URL.RawQuery,
	})
}

func (s *Server) verifyNow(w http.ResponseWriter, r *http.Request, _ *session) {
	select {
	case s.kick <- struct{}{}:
	default: // one is already waiting
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) render(w http.ResponseWriter, name string, ss *session, st state, extra map[string]any) {
	data := map[string]any{"CSRF": ss.CSRF, "SignedIn": ss.User, "S": st}
	for k, v := range extra {
		data[k] = v
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("dashboard: rendering a page", "page", name, "err", err)
	}
}

func (s *Server) css(w http.ResponseWriter, r *http.Request) {
	b, _ := assets.ReadFile("static/console.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// current returns the request's session, if it has a live one.
func (s *Server) current(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	return s.sess.Get(c.Value)
}

func (s *Server) setCookie(w http.ResponseWriter, ss *session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: ss.ID, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// signedIn lets only a signed-in FG through, and checks the CSRF token of
// every form.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := s.current(r)
		if ss == nil || !ss.User {
			http.Redirect(w, r, "/inloggen", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !ss.ValidCSRF(r) {
			http.Error(w, "Het formulier is verlopen; laad de pagina opnieuw.", http.StatusForbidden)
			return
		}
		h(w, r, ss)
	}
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	ss := s.current(r)
	if ss == nil {
		ss = s.sess.Create()
		s.setCookie(w, ss)
	}
	s.render(w, "inloggen.html", ss, state{}, map[string]any{"Failed": r.URL.Query().Has("mislukt")})
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	ss := s.current(r)
	if ss == nil || !ss.ValidCSRF(r) {
		http.Error(w, "Het formulier is verlopen; laad de pagina opnieuw.", http.StatusForbidden)
		return
	}
	if err := checkPassword(s.cfg.PasswordFile, r.PostFormValue("wachtwoord")); err != nil {
		if !errors.Is(err, ErrSignIn) {
			s.log.Error("dashboard: sign-in", "err", err)
		}
		http.Redirect(w, r, "/inloggen?mislukt", http.StatusSeeOther)
		return
	}
	s.setCookie(w, s.sess.SignIn(ss, true))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request, ss *session) {
	s.sess.Drop(ss.ID)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/inloggen", http.StatusSeeOther)
}

// when shows a time in Dutch, in local time.
func when(t time.Time) string {
	if t.IsZero() {
		return "nog niet"
	}
	months := []string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"}
	t = t.Local()
	return fmt.Sprintf("%d %s %d, %02d:%02d:%02d", t.Day(), months[t.Month()-1], t.Year(), t.Hour(), t.Minute(), t.Second())
}
