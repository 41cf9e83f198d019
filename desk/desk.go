// Package desk is the privacy desk's own screen (`spoor desk`): Dutch web
// pages on the desk's machine through which desk users register an
// inzageverzoek (AVG art. 15), have a second desk user release the answer,
// and download the answer and its report again later.
//
// Data flows one way. A desk user types the child's BSN into a form on the
// desk's machine; the desk checks it with the elfproef and turns it into
// pseudonyms with the pseudonym keys it holds; only the pseudonyms go to
// the ledger's API (its desk routes, with the bodies of verifier/deskapi), with the desk user's own
// bearer token. The BSN is never put in a URL, a log line, a page after
// the submit, or a request to the ledger. Bundles come back from the
// ledger, are verified with the pinned keys (verifier) and turned into the
// Dutch report (verifier/report).
//
// Desk users sign in with a password (an Argon2id hash in the users file)
// and a TOTP code (RFC 6238, totp.go); see users.go for what the file holds.
// Sessions are in memory, in an HttpOnly, SameSite=Strict cookie (Secure
// under TLS), with a CSRF token on every form, an idle timeout and a check
// of the Host header (no other site, and no DNS rebinding, reaches the
// desk through a visitor's browser).
package desk

import (
	"embed"
	"errors"
	"fmt"
	"github.com/spoor-ledger/spoor/internal/websession"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// Config configures the desk. LedgerURL, UsersFile, SubjectKeys and Hosts
// are required; the zero value of every other field is a sane default.
type Config struct {
	// LedgerURL is the ledger's HTTP address (http://127.0.0.1:8080).
	LedgerURL string
	// HTTPClient calls the ledger; nil means a client with a one-minute
	// timeout.
	HTTPClient *http.Client
	// UsersFile is the desk users file (AddUser writes it).
	UsersFile string
	// SubjectKeys are the pseudonym keys K_v: a request looks under each.
	SubjectKeys []events.SubjectKey
	// LogVkey, CosignerVkey and AdminVkey are the pinned keys a bundle is
	// verified with before its report is made. Without them the desk
	// offers the bundle but no report.
	LogVkey, CosignerVkey, AdminVkey string
	// Hosts are the Host header values the desk answers to, such as
	// "127.0.0.1:8090" and "localhost:8090"; any other is refused.
	Hosts []string
	// TLS is true when the desk is served over TLS: the cookie is then
	// Secure (and named with the __Host- prefix).
	TLS bool
	// IdleTimeout signs a desk user out after this long without a request;
	// 0 means 15 minutes. A session ends after 8 hours whatever happens.
	IdleTimeout time.Duration
	// Logger; nil discards. Log lines name desk users and request ids,
	// never what was typed into a form.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the desk's web handler.
type Server struct {
	cfg    Config
	ledger *url.URL
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	keys   *verifier.LogKeys // nil: no report
	sess   *websession.Store[*user]
	pages  *template.Template
	mux    *http.ServeMux
	cookie string

	mu       sync.Mutex
	lastStep map[string]uint64 // per desk user: the last TOTP step accepted
	failures map[string][]time.Time
}

// Sign-in throttling: after maxFailures refused sign-ins of one name
// within failureWindow, that name is refused until the window has passed.
const (
	maxFailures   = 5
	failureWindow = 15 * time.Minute
)

//go:embed templates/*.html static/desk.css
var assets embed.FS

// New checks cfg and returns the desk.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.LedgerURL == "":
		return nil, errors.New("desk: the ledger's URL is required")
	case cfg.UsersFile == "":
		return nil, errors.New("desk: the users file is required")
	case len(cfg.SubjectKeys) == 0:
		return nil, errors.New("desk: at least one pseudonym key is required")
	case len(cfg.Hosts) == 0:
		return nil, errors.New("desk: the Host names the desk answers to are required")
	}
	lu, err := url.Parse(cfg.LedgerURL)
	if err != nil || (lu.Scheme != "http" && lu.Scheme != "https") || lu.Host == "" {
		return nil, fmt.Errorf("desk: the ledger's URL %q is not an http(s) URL", cfg.LedgerURL)
	}
	s := &Server{cfg: cfg, ledger: lu, client: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now,
		lastStep: map[string]uint64{}, failures: map[string][]time.Time{}}
	if s.client == nil {
		s.client = &http.Client{Timeout: time.Minute}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
		s.cfg.IdleTimeout = cfg.IdleTimeout
	}
	if cfg.LogVkey != "" || cfg.CosignerVkey != "" || cfg.AdminVkey != "" {
		if cfg.LogVkey == "" || cfg.CosignerVkey == "" || cfg.AdminVkey == "" {
			return nil, errors.New("desk: the report needs all three pinned keys (log, cosigner, administrator)")
		}
		if s.keys, err = verifier.ParseLogKeys(cfg.LogVkey, cfg.CosignerVkey); err != nil {
			return nil, fmt.Errorf("desk: pinned keys: %w", err)
		}
	}
	s.cookie = "spoor-desk"
	if cfg.TLS {
		// The __Host- prefix makes the browser insist on Secure, Path=/
		// and no Domain: no other host can set or shadow it.
		s.cookie = "__Host-spoor-desk"
	}
	s.sess = websession.NewStore[*user](cfg.IdleTimeout, 8*time.Hour, s.now)
	s.pages, err = template.New("").Funcs(template.FuncMap{
		"relation": relationText, "status": statusText, "when": s.when, "ground": groundText,
		"erasureGround": erasureGroundText, "erasureStatus": erasureStatusText,
	}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("desk: templates: %w", err)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /static/desk.css", s.css)
	s.mux.HandleFunc("GET /inloggen", s.signInPage)
	s.mux.HandleFunc("POST /inloggen", s.signIn)
	s.mux.HandleFunc("POST /uitloggen", s.signedIn(s.signOut))
	s.mux.HandleFunc("GET /{$}", s.signedIn(s.list))
	s.mux.HandleFunc("GET /nieuw", s.signedIn(s.newPage))
	s.mux.HandleFunc("POST /nieuw", s.signedIn(s.register))
	s.mux.HandleFunc("GET /verzoek/{id}", s.signedIn(s.request))
	s.mux.HandleFunc("POST /verzoek/{id}/vrijgeven", s.signedIn(s.release))
	s.mux.HandleFunc("GET /verzoek/{id}/antwoord.json", s.signedIn(s.bundle))
	s.mux.HandleFunc("GET /verzoek/{id}/rapport.html", s.signedIn(s.report))
	s.mux.HandleFunc("GET /wissen", s.signedIn(s.erasurePage))
	s.mux.HandleFunc("POST /wissen", s.signedIn(s.proposeErasure))
	s.mux.HandleFunc("POST /wissen/{id}/bevestigen", s.signedIn(s.decideErasure("confirm")))
	s.mux.HandleFunc("POST /wissen/{id}/intrekken", s.signedIn(s.decideErasure("withdraw")))
	return s, nil
}

// Handler returns the desk's pages, behind the checks every request passes.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No script, no frame, no other origin: the pages need none of it.
	websession.SetSecurityHeaders(h)
	if s.cfg.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !slices.Contains(s.cfg.Hosts, r.Host) {
		// A page of another site that a desk user's browser opens could
		// otherwise reach the desk under a name that resolves to
		// loopback (DNS rebinding).
		s.log.Warn("desk request refused: unknown Host header", "path", r.URL.Path)
		http.Error(w, "Onbekende host.", http.StatusMisdirectedRequest)
		return
	}
	if r.Method == http.MethodPost && !websession.SameOrigin(r, s.cfg.TLS) {
		s.log.Warn("desk form refused: it comes from another origin", "path", r.URL.Path)
		http.Error(w, "Dit formulier komt niet van de privacybalie.", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// HostsFor returns the Host header values of a desk listening on addr
// (host:port): the address itself and, on loopback, "localhost" and
// "127.0.0.1" with its port.
func HostsFor(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{addr}
	}
	out := []string{addr}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		for _, h := range []string{"localhost:" + port, "127.0.0.1:" + port} {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

func (s *Server) css(w http.ResponseWriter, r *http.Request) {
	b, _ := assets.ReadFile("static/desk.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(b)
}

// when shows a time in Dutch, in the desk's local time.
func (s *Server) when(t time.Time) string {
	months := []string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"}
	t = t.Local()
	return fmt.Sprintf("%d %s %d, %02d:%02d", t.Day(), months[t.Month()-1], t.Year(), t.Hour(), t.Minute())
}
