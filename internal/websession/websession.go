// Package websession holds what the Dutch screens that people sign in to
// (spoor desk, spoor dashboard, the recording form of spoor gateway) share: sessions in memory with a CSRF
// token each, idle and absolute timeouts, a one-message flash across a
// redirect, and the response headers that let their pages run no script
// and be framed by no one. Each screen keeps its own sign-in (the desk's
// users with TOTP, the FG's one password) and its own handlers.
package websession

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Session is one browser's session: anonymous (only a CSRF token, for the
// sign-in form) until sign-in sets User. Its fields are not changed after
// Store hands it out, but for the flash, which goes through the Store.
type Session[U any] struct {
	ID   string
	CSRF string
	// User is the zero U until sign-in.
	User     U
	lastSeen time.Time
	started  time.Time
	// flash is a message for the next page (after a redirect), never
	// personal data.
	flash, flashKind string
}

// RandomText is 32 random bytes in URL-safe base64: a session id or token.
func RandomText() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Store keeps the sessions in memory: a restart signs everyone out.
type Store[U any] struct {
	mu             sync.Mutex
	m              map[string]*Session[U]
	idle, absolute time.Duration
	now            func() time.Time
}

// NewStore returns a store whose sessions end after idle without a
// request, or absolute after they began; now is the clock.
func NewStore[U any](idle, absolute time.Duration, now func() time.Time) *Store[U] {
	return &Store[U]{m: map[string]*Session[U]{}, idle: idle, absolute: absolute, now: now}
}

// Create starts an anonymous session.
func (ss *Store[U]) Create() *Session[U] {
	return ss.create(*new(U))
}

func (ss *Store[U]) create(user U) *Session[U] {
	now := ss.now()
	s := &Session[U]{ID: RandomText(), CSRF: RandomText(), User: user, lastSeen: now, started: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	// Drop expired sessions while here: the map stays as small as the
	// number of people signed in.
	for id, o := range ss.m {
		if ss.expired(o, now) {
			delete(ss.m, id)
		}
	}
	ss.m[s.ID] = s
	return s
}

func (ss *Store[U]) expired(s *Session[U], now time.Time) bool {
	return now.Sub(s.lastSeen) > ss.idle || now.Sub(s.started) > ss.absolute
}

// Get returns the live session of id and marks it seen; nil for an
// unknown or expired one (which it forgets).
func (ss *Store[U]) Get(id string) *Session[U] {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, id)
		return nil
	}
	s.lastSeen = now
	return s
}

// Drop ends the session of id.
func (ss *Store[U]) Drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// SignIn replaces the anonymous session old (if any) by a new one of
// user, so that a session id planted before sign-in is worth nothing
// after it.
func (ss *Store[U]) SignIn(old *Session[U], user U) *Session[U] {
	if old != nil {
		ss.Drop(old.ID)
	}
	return ss.create(user)
}

// SetFlash and TakeFlash carry one message across a redirect.
func (ss *Store[U]) SetFlash(s *Session[U], kind, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash, s.flashKind = msg, kind
}

// TakeFlash returns the flash and clears it.
func (ss *Store[U]) TakeFlash(s *Session[U]) (kind, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	kind, msg = s.flashKind, s.flash
	s.flash, s.flashKind = "", ""
	return kind, msg
}

// ValidCSRF compares a form's "csrf" field with the session's token in
// constant time.
func (s *Session[U]) ValidCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// SetSecurityHeaders sets the headers every page of a screen carries: no
// script, no frame, no other origin, nothing cached. Referrer-Policy is
// same-origin, not no-referrer: under no-referrer the browser sends
// "Origin: null" with a form, and an origin check could not tell the
// screen's own forms from a sandboxed page's (the URLs carry no personal
// data).
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// SameOrigin refuses a form that the browser says comes from elsewhere (a
// second line behind the CSRF token): Sec-Fetch-Site other than
// same-origin or none, or an Origin other than the screen's own ("null"
// included). tls says the screen is served over HTTPS.
func SameOrigin(r *http.Request, tls bool) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return origin == scheme+"://"+r.Host
}
