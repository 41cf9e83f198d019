package dashboard

// The FG's password and sessions. There is one user, the FG, on its own
// machine: the password file holds an Argon2id hash of the password and
// nothing else (the FG's bearer token stays in the file the FG already
// keeps, given on the command line). Sessions live in memory only.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/spoor-ledger/spoor/internal/durable"
)

// PasswordFormat names the password file's format.
const PasswordFormat = "spoor-dashboard-password/v1"

// MinPasswordLength is the shortest password SetPassword takes.
const MinPasswordLength = 12

// Argon2id parameters of RFC 9106's second recommended option; they are
// stored in the file so that they can be raised later.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
)

// ErrSignIn means the password did not match.
var ErrSignIn = errors.New("dashboard: the password does not match")

type passwordFile struct {
	Format  string `json:"format"`
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
	Hash    []byte `json:"hash"`
}

// SetPassword writes the password file at path (mode 0600), replacing any
// that is there. The console asks for it at its first start.
func SetPassword(path, password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return fmt.Errorf("dashboard: the password needs at least %d characters", MinPasswordLength)
	}
	f := passwordFile{Format: PasswordFormat, Salt: make([]byte, 16), Time: argonTime, Memory: argonMemory, Threads: argonThreads}
	rand.Read(f.Salt)
	f.Hash = argon2.IDKey([]byte(password), f.Salt, f.Time, f.Memory, f.Threads, 32)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("couldn't write the dashboard's password file: %w", err)
	}
	return nil
}

// checkPassword compares password with the file's hash in constant time.
func checkPassword(path, password string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("couldn't read the dashboard's password file: %w", err)
	}
	var f passwordFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("dashboard password file %s: %w", path, err)
	}
	if f.Format != PasswordFormat || len(f.Hash) != 32 {
		return fmt.Errorf("dashboard password file %s: format %q, want %q", path, f.Format, PasswordFormat)
	}
	got := argon2.IDKey([]byte(password), f.Salt, f.Time, f.Memory, f.Threads, 32)
	if subtle.ConstantTimeCompare(got, f.Hash) != 1 {
		return ErrSignIn
	}
	return nil
}

// session is one browser's session: anonymous (a CSRF token for the
// sign-in form) until the FG signs in.
type session struct {
	id, csrf  string
	signedIn  bool
	lastSeen  time.Time
	startedAt time.Time
}

func randomText() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type sessions struct {
	mu             sync.Mutex
	m              map[string]*session
	idle, absolute time.Duration
	now            func() time.Time
}

func (ss *sessions) create() *session {
	now := ss.now()
	s := &session{id: randomText(), csrf: randomText(), lastSeen: now, startedAt: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, o := range ss.m {
		if ss.expired(o, now) {
			delete(ss.m, id)
		}
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) > ss.idle || now.Sub(s.startedAt) > ss.absolute
}

// get returns the live session of id, or nil.
func (ss *sessions) get(id string) *session {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok || ss.expired(s, now) {
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

// signIn replaces an anonymous session by a new signed-in one, so that a
// session id planted before sign-in is worth nothing after it.
func (ss *sessions) signIn(old *session) *session {
	if old != nil {
		ss.drop(old.id)
	}
	s := ss.create()
	ss.mu.Lock()
	s.signedIn = true
	ss.mu.Unlock()
	return s
}

func (s *session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
