package dashboard

// The FG's password and sessions. There is one user, the FG, on its own
// machine: the password file holds an Argon2id hash of the password and
// nothing else (the FG's bearer token stays in the file the FG already
// keeps, given on the command line). Sessions live in memory only.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/spoor-ledger/spoor/internal/websession"
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

// session is one browser's session at the console (internal/websession):
// its User is true once the FG signed in.
type session = websession.Session[bool]

// throttle slows down guessing the password: after throttleFree failed
// sign-ins in a row, each next attempt must wait twice as long as the one
// before (1 s, 2 s, 4 s, ... at most throttleMax), whatever browser it
// comes from; a successful sign-in resets it. There is one user, so one
// counter: the console listens on loopback, where every client has the
// same address.
type throttle struct {
	mu     sync.Mutex
	failed int
	until  time.Time
}

const (
	throttleFree = 5
	throttleMax  = 5 * time.Minute
)

func newThrottle() *throttle { return &throttle{} }

// wait returns how long the next attempt must still wait.
func (t *throttle) wait(now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(t.until.Sub(now), 0)
}

// result records an attempt.
func (t *throttle) result(ok bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.failed, t.until = 0, time.Time{}
		return
	}
	t.failed++
	if n := t.failed - throttleFree; n >= 0 {
		t.until = now.Add(min(time.Second<<min(n, 20), throttleMax))
	}
}
