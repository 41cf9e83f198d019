// Package dashboard is the FG's console (`spoor dashboard`): Dutch web
// pages on the FG's own machine that show what the FG's own verification
// of the ledger found, not what the operator's pages say.
//
// Data flows one way. The console keeps its own verified copy of the log
// (dashboard/index, in Config.DataDir, files 0600) and follows the ledger
// every FollowInterval over its HTTP API with the FG's bearer token: a new
// checkpoint is shown only once it opens with the pinned keys, extends the
// copy's tree and its leaves match the ledger's tiles; every tombstone
// removes the erased envelope from the copy as it is followed. From the
// copy it builds the monthly tables (tables.go) as entries
// arrive, and runs the whole audit (audit.Run over the copy) after each
// growth and on the button, which also re-verifies the copy's files from
// scratch. It keeps the last report and the disclosures that broke a rule
// (audit.Config.OnFinding) in memory and serves them on loopback: health
// with the follower's alarms, counts per organisation (organisations
// without any disclosure too), the tables over time with inline SVG charts,
// the findings filterable by organisation, rule, period and age band, each
// opening to the entry with a locally verified inclusion proof (entry.go),
// the anomalies with their statistics, answers, erasures, the covenant
// versions, CSV exports and the printable audit report.
//
// The console holds the discloser's own words (a finding's justification):
// every such string is escaped in HTML (html/template; the charts are made
// by the same templates) and neutralised in CSV (a cell starting with
// = + - @ gets a leading quote). No table or CSV shows a pseudonym: only the
// page of one entry does. The pages allow no script at all
// (Content-Security-Policy), answer only to the Host names configured (DNS
// rebinding), every form carries a CSRF token, and sign-ins are throttled.
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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/dashboard/index"
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
	// DataDir holds the console's verified copy of the log (required).
	DataDir string
	// FollowInterval is how often the ledger is asked for new
	// checkpoints; 0 means one second.
	FollowInterval time.Duration
	// Interval is the least time between two full audits of the copy,
	// which run whenever the copy grew; 0 means as soon as the last one
	// ended.
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
	idx   *index.Index
	log   *slog.Logger
	now   func() time.Time
	sess  *websession.Store[bool]
	pages *template.Template
	mux   *http.ServeMux
	// kick asks for a full re-verification (the button).
	kick     chan struct{}
	progress index.Progress
	tables   *tables
	throttle *throttle

	mu       sync.Mutex
	rep      *audit.Report
	findings []audit.FindingDisclosure
	// bands are the findings' age bands, read from the copy once per
	// audit: the findings filter by them.
	bands map[uint64]events.AgeBand
	// verifiedAt is when the last audit that ran to its end finished;
	// lastErr is why the newest attempt failed, if it did.
	verifiedAt time.Time
	lastErr    string
	running    bool
	// followedAt is when the copy last caught up with the ledger;
	// followErr why the last attempt failed; alarm the last verified sign
	// of misbehaviour (it stays until the console restarts).
	followedAt time.Time
	followErr  string
	alarm      *index.Alarm
	reverified *index.Reverified
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
	case cfg.DataDir == "":
		return nil, errors.New("dashboard: the data folder (the FG's copy of the log) is required")
	case len(cfg.Hosts) == 0:
		return nil, errors.New("dashboard: the Host names the console answers to are required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.FollowInterval <= 0 {
		cfg.FollowInterval = time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, kick: make(chan struct{}, 1), throttle: newThrottle()}
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
	idx, err := index.Open(filepath.Join(cfg.DataDir, "kopie"), cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("dashboard: the local copy of the log: %w", err)
	}
	s.idx = idx
	s.tables = newTables()
	s.sess = websession.NewStore[bool](cfg.IdleTimeout, 8*time.Hour, s.now)
	s.pages, err = template.New("").Funcs(template.FuncMap{
		"when": when, "rule": events.FindingLabelNL, "withhold": report.WithholdGroundLabel,
		"erasureGround": report.ErasureGroundLabel, "relation": report.RelationLabel, "join": strings.Join,
		"pct": func(done, total uint64) int {
			if total == 0 {
				return 100
			}
			return int(100 * done / total)
		},
		"num":     func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) },
		"mul100":  func(x float64) float64 { return 100 * x },
		"ageBand": report.AgeBandLabel,
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
	s.mux.HandleFunc("GET /vermelding/{leaf}", s.signedIn(s.entryPage))
	s.mux.HandleFunc("GET /tabellen", s.signedIn(s.tablesPage))
	s.mux.HandleFunc("GET /tabellen/csv/{dim}", s.signedIn(s.tableCSV))
	s.mux.HandleFunc("GET /afwijkingen", s.signedIn(s.anomaliesPage))
	s.mux.HandleFunc("GET /rapport", s.signedIn(s.reportPage))
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

// Close closes the console's copy of the log.
func (s *Server) Close() error { return s.idx.Close() }

// Run builds the tables from the copy, then follows the ledger every
// FollowInterval and audits the copy whenever it grew (no more often than
// Interval) and on the button, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	// The tables are counted from what the copy holds beside the
	// follower, which counts what it adds itself: at a million entries
	// the count takes seconds the follower need not wait for.
	s.tables.startBuild(s.idx.Size())
	built := make(chan error, 1)
	go func() { built <- s.buildTables(ctx) }()
	defer func() {
		if err := <-built; err != nil && ctx.Err() == nil {
			s.log.Error("dashboard: the tables", "err", err)
		}
	}()
	grew := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.auditLoop(ctx, grew)
	}()
	defer func() { <-done }()
	t := time.NewTicker(s.cfg.FollowInterval)
	defer t.Stop()
	signal := func() {
		select {
		case grew <- struct{}{}:
		default:
		}
	}
	if s.idx.Size() > 0 {
		signal() // the first audit, of what the copy already holds
	}
	for {
		if s.Follow(ctx) {
			signal()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// auditLoop audits the copy on each signal of growth and re-verifies it
// first on the button.
func (s *Server) auditLoop(ctx context.Context, grew <-chan struct{}) {
	var last time.Time
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-grew:
		case <-s.kick:
			full = true
		}
		if wait := s.cfg.Interval - time.Since(last); !full && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if full {
			s.Reverify(ctx)
		}
		s.Refresh(ctx)
		last = time.Now()
	}
}

// Follow brings the copy up to the ledger's newest checkpoint once, and
// reports whether it grew.
func (s *Server) Follow(ctx context.Context) bool {
	res, err := s.idx.Follow(ctx, index.Remote{Src: s.src}, &s.progress, s.tables.erase,
		func(r index.FollowResult) {
			if err := s.tables.scan(ctx, s.idx, r.From, r.To, false); err != nil {
				s.log.Warn("dashboard: the tables", "err", err)
			}
		})
	s.mu.Lock()
	defer s.mu.Unlock()
	var alarm *index.Alarm
	switch {
	case errors.As(err, &alarm):
		// The same alarm comes back at every follow: said once.
		if s.alarm == nil || s.alarm.Kind != alarm.Kind || s.alarm.Detail != alarm.Detail {
			s.log.Error("dashboard: the ledger misbehaves", "kind", string(alarm.Kind), "tree_size", s.idx.Size())
			s.alarm = alarm
		}
		s.followErr = err.Error()
	case err != nil:
		s.followErr = err.Error()
		s.log.Warn("dashboard: following the ledger", "err", err)
	default:
		s.followErr, s.followedAt = "", s.now()
	}
	return res.To > res.From || len(res.Erased) > 0
}

// Reverify checks the copy's files again from scratch.
func (s *Server) Reverify(ctx context.Context) {
	rv, err := s.idx.Reverify(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = "de lokale kopie klopt niet: " + err.Error()
		s.log.Error("dashboard: the copy does not re-verify", "err", err)
		return
	}
	s.reverified = rv
}

// Refresh runs the whole audit of the copy once and, when it ran to its
// end, keeps its report and findings; a failed attempt keeps the last good
// ones and says why it failed.
func (s *Server) Refresh(ctx context.Context) {
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	var found []audit.FindingDisclosure
	start := time.Now()
	rep, err := audit.Run(ctx, localSource{s.idx, s.src}, audit.Config{Keys: s.cfg.Keys, AdminVkey: s.cfg.AdminVkey, Now: s.now,
		OnFinding: func(f audit.FindingDisclosure) { found = append(found, f) }})
	var bands map[uint64]events.AgeBand
	if err == nil {
		bands = s.ageBands(found)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	if err != nil {
		s.lastErr = err.Error()
		s.log.Warn("dashboard audit failed", "err", err)
		return
	}
	s.rep, s.findings, s.bands, s.verifiedAt, s.lastErr = rep, found, bands, s.now(), ""
	s.log.Info("dashboard audit done", "tree_size", rep.TreeSize, "ok", rep.OK, "findings", len(found), "seconds", time.Since(start).Seconds())
}

// AuditedSize is the tree size the last completed audit covered.
func (s *Server) AuditedSize() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rep == nil {
		return 0
	}
	return s.rep.TreeSize
}

// localSource is the audit's source: the copy, with the erasure proposals
// and the witnessed checkpoints (which the copy does not keep) read from
// the ledger; the audit checks those against the copy's checkpoints.
type localSource struct {
	*index.Index
	remote *audit.HTTPSource
}

func (l localSource) ErasureProposals(ctx context.Context) ([]verifier.ErasureProposal, error) {
	return l.remote.ErasureProposals(ctx)
}

func (l localSource) WitnessedCheckpoints(ctx context.Context) ([]audit.StoredCheckpoint, error) {
	return l.remote.WitnessedCheckpoints(ctx)
}

// state is what the pages show: one consistent snapshot.
type state struct {
	Report     *audit.Report
	Findings   []audit.FindingDisclosure
	Bands      map[uint64]events.AgeBand
	VerifiedAt time.Time
	LastErr    string
	Running    bool
	// The copy: its verified size and newest checkpoint, the follower's
	// progress, last success and failure, alarm, last re-verification.
	Size             uint64
	Newest           *verifier.Checkpoint
	Done, Total      uint64
	FollowedAt       time.Time
	FollowErr        string
	Alarm            *index.Alarm
	Reverified       *index.Reverified
	ErasedInCopy     uint64
	FollowIntervalMS int64
}

// CatchingUp reports whether the copy is still reading entries.
func (st state) CatchingUp() bool { return st.Done < st.Total }

func (s *Server) snapshot() state {
	s.mu.Lock()
	defer s.mu.Unlock()
	return state{Report: s.rep, Findings: s.findings, Bands: s.bands, VerifiedAt: s.verifiedAt, LastErr: s.lastErr, Running: s.running,
		Size: s.idx.Size(), Newest: s.idx.Newest(), Done: s.progress.Done.Load(), Total: s.progress.Total.Load(),
		FollowedAt: s.followedAt, FollowErr: s.followErr, Alarm: s.alarm, Reverified: s.reverified, ErasedInCopy: s.idx.ErasedCount(),
		FollowIntervalMS: s.cfg.FollowInterval.Milliseconds()}
}

// findingFilter is the findings page's filter; empty fields match all.
type findingFilter struct {
	Org, Rule, Band string
	// From and To bound occurred_at (Amsterdam days, To included).
	From, To string
}

func filterOf(r *http.Request) findingFilter {
	q := r.URL.Query()
	return findingFilter{Org: q.Get("organisatie"), Rule: q.Get("regel"), Band: q.Get("leeftijd"), From: q.Get("van"), To: q.Get("tot")}
}

// filter returns the findings that f lets through.
func filter(fs []audit.FindingDisclosure, bands map[uint64]events.AgeBand, f findingFilter) []audit.FindingDisclosure {
	if f == (findingFilter{}) {
		return fs // the snapshot's slice is never written to
	}
	var from, to time.Time
	if t, err := time.ParseInLocation("2006-01-02", f.From, amsterdam); err == nil {
		from = t
	}
	if t, err := time.ParseInLocation("2006-01-02", f.To, amsterdam); err == nil {
		to = t.AddDate(0, 0, 1)
	}
	var out []audit.FindingDisclosure
	for _, d := range fs {
		if (f.Org == "" || d.Discloser == f.Org) && (f.Rule == "" || slices.Contains(d.Rules, f.Rule)) &&
			(f.Band == "" || string(bands[d.Leaf]) == f.Band) &&
			(from.IsZero() || !d.OccurredAt.Before(from)) && (to.IsZero() || d.OccurredAt.Before(to)) {
			out = append(out, d)
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
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="bevindingen.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"leaf", "organisatie", "ontvangers", "doel", "categorieen", "regels", "convenantversie", "plaatsgevonden", "vastgelegd", "toelichting"})
	for _, f := range filter(st.Findings, st.Bands, filterOf(r)) {
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

// findingsPerPage bounds one findings page: a log of a million entries
// can hold a hundred thousand findings, and a page of them all would take
// seconds to render and to read; the CSV holds them all.
const findingsPerPage = 200

func (s *Server) findingsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	st := s.snapshot()
	f := filterOf(r)
	rows := filter(st.Findings, st.Bands, f)
	page, _ := strconv.Atoi(r.URL.Query().Get("pagina"))
	pages := max((len(rows)+findingsPerPage-1)/findingsPerPage, 1)
	page = min(max(page, 1), pages)
	shown := rows[min((page-1)*findingsPerPage, len(rows)):min(page*findingsPerPage, len(rows))]
	q := r.URL.Query()
	q.Del("pagina")
	link := func(p int) string {
		if p < 1 || p > pages {
			return ""
		}
		q.Set("pagina", strconv.Itoa(p))
		return "/bevindingen?" + q.Encode()
	}
	prev, next := link(page-1), link(page+1)
	q.Del("pagina")
	s.render(w, "bevindingen.html", ss, st, map[string]any{
		"F": f, "Org": f.Org, "Rule": f.Rule, "Rows": shown, "Count": len(rows), "Page": page, "Pages": pages,
		"Prev": prev, "Next": next, "Rules": events.FindingRules(),
		"Bands": []events.AgeBand{events.AgeUnder12, events.Age12To15, events.Age16Plus},
		"CSV":   "/bevindingen.csv?" + q.Encode(),
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
	if wait := s.throttle.wait(s.now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		http.Error(w, "Te veel mislukte pogingen; probeer het over "+strconv.Itoa(int(wait.Seconds())+1)+" seconden opnieuw.", http.StatusTooManyRequests)
		return
	}
	err := checkPassword(s.cfg.PasswordFile, r.PostFormValue("wachtwoord"))
	s.throttle.result(err == nil, s.now())
	if err != nil {
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
