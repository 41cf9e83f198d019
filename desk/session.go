package desk

// Sessions live in the desk's memory only: a restart signs everyone out,
// and no bearer token is ever written anywhere but the sealed users file.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// session is one browser's session: anonymous (only a CSRF token, for the
// sign-in form) until the desk user signs in.
type session struct {
	id   string
	csrf string
	// user is nil until sign-in.
	user     *user
	lastSeen time.Time
	started  time.Time
	// flash is a message for the next page (after a redirect), never
	// personal data.
	flash, flashKind string
}

func randomText() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type sessions struct {
	mu       sync.Mutex
	m        map[string]*session
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
}

func (ss *sessions) create() *session {
	now := ss.now()
	s := &session{id: randomText(), csrf: randomText(), lastSeen: now, started: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	// Drop expired sessions while here: the map stays as small as the
	// number of people at the desk.
	for id, o := range ss.m {
		if ss.expired(o, now) {
			delete(ss.m, id)
		}
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) > ss.idle || now.Sub(s.started) > ss.absolute
}

// get returns the live session of id and marks it seen; nil for an
// unknown or expired one (which it forgets).
func (ss *sessions) get(id string) *session {
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

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// setFlash and takeFlash carry one message across a redirect.
func (ss *sessions) setFlash(s *session, kind, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash, s.flashKind = msg, kind
}

func (ss *sessions) takeFlash(s *session) (kind, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	kind, msg = s.flashKind, s.flash
	s.flash, s.flashKind = "", ""
	return kind, msg
}

// validCSRF compares a form's token with the session's in constant time.
func (s *session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
