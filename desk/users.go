package desk

// The users file: one record per desk user, written by `spoor desk adduser`
// and read at every sign-in (so that a user added while the desk runs can
// sign in without a restart).
//
// A record holds no secret in the clear. Argon2id turns the password and a
// salt into 64 bytes: the first 32 are compared with the stored hash, the
// last 32 are the key that opens the record's sealed part (XChaCha20-
// Poly1305), which holds the TOTP secret and the desk user's bearer token
// for the ledger. Whoever copies the file must guess a password through
// Argon2id before they learn either; the token is opened only at sign-in and
// lives in the session's memory.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/spoor-ledger/spoor/internal/durable"
)

// UsersFormat names the users file's format (its "format" field).
const UsersFormat = "spoor-desk-users/v1"

// MinPasswordLength is the shortest password adduser takes: a passphrase
// of a few words, not a PIN.
const MinPasswordLength = 12

// Argon2id parameters: the second recommended option of RFC 9106 (section
// 4), 3 passes over 64 MiB with 4 lanes, about a tenth of a second on a
// desk's laptop. They are stored in each record, so that they can be
// raised later without breaking older records.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
	saltSize     = 16
)

// Errors of the users file that callers branch on.
var (
	// ErrSignIn means a name, password or code did not match. It does not
	// say which: a guesser learns nothing about the names.
	ErrSignIn = errors.New("desk: name, password or code does not match")
	// ErrUserExists means adduser was given a name that is already there.
	ErrUserExists = errors.New("desk: a desk user of that name already exists")
)

type usersFile struct {
	Format string       `json:"format"`
	Users  []userRecord `json:"users"`
}

// userRecord is one desk user in the users file.
type userRecord struct {
	// Name is how the desk user signs in and how the pages name them.
	Name string `json:"name"`
	// Argon2id: salt and parameters, and the first 32 bytes of its output.
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
	Hash    []byte `json:"hash"`
	// Sealed is sealedPart under the last 32 bytes of the Argon2id output,
	// with the format and the name as additional data (a sealed part moved
	// to another record does not open). Nonce first.
	Sealed []byte `json:"sealed"`
}

// sealedPart is what only the right password opens.
type sealedPart struct {
	TOTPSecret []byte `json:"totp_secret"`
	// Token is the desk user's bearer token for the ledger's API.
	Token string `json:"token"`
}

// user is a desk user who signed in: their name and what the sealed part
// held.
type user struct {
	name   string
	secret []byte
	token  string
}

func (r *userRecord) derive(password string) (hash, key []byte) {
	out := argon2.IDKey([]byte(password), r.Salt, r.Time, r.Memory, r.Threads, 64)
	return out[:32], out[32:]
}

func additionalData(name string) []byte { return []byte(UsersFormat + "\x00" + name) }

func readUsers(path string) (*usersFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the desk users file: %w", err)
	}
	var f usersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("desk users file %s: %w", path, err)
	}
	if f.Format != UsersFormat {
		return nil, fmt.Errorf("desk users file %s: format %q, want %q", path, f.Format, UsersFormat)
	}
	return &f, nil
}

// AddUser adds a desk user to the users file at path (made if missing,
// mode 0600): name signs in with password and a TOTP code, and the desk
// calls the ledger with token. It returns the new TOTP secret, to be put in
// the desk user's authenticator app (shown once: the file keeps it sealed).
func AddUser(path, name, password, token string) ([]byte, error) {
	switch {
	case name == "" || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return nil, errors.New("desk: a desk user's name is 1 to 64 characters without spaces")
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return nil, fmt.Errorf("desk: the password needs at least %d characters", MinPasswordLength)
	case token == "":
		return nil, errors.New("desk: the desk user needs a bearer token for the ledger")
	}
	f, err := readUsers(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = &usersFile{Format: UsersFormat}, nil
	}
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(f.Users, func(u userRecord) bool { return u.Name == name }) {
		return nil, fmt.Errorf("%w: %s", ErrUserExists, name)
	}
	rec := userRecord{Name: name, Salt: make([]byte, saltSize), Time: argonTime, Memory: argonMemory, Threads: argonThreads}
	secret := make([]byte, totpSecretSize)
	rand.Read(rec.Salt)
	rand.Read(secret)
	hash, key := rec.derive(password)
	rec.Hash = hash
	plain, err := json.Marshal(sealedPart{TOTPSecret: secret, Token: token})
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("desk: sealing: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	rec.Sealed = aead.Seal(nonce, nonce, plain, additionalData(name))
	f.Users = append(f.Users, rec)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("couldn't write the desk users file: %w", err)
	}
	return secret, nil
}

// dummyRecord is what an unknown name is checked against, so that an
// unknown name costs as much time as a known one.
var dummyRecord = userRecord{Salt: make([]byte, saltSize), Time: argonTime, Memory: argonMemory, Threads: argonThreads, Hash: make([]byte, 32)}

// checkPassword opens name's record with password: ErrSignIn when the name
// is unknown or the password wrong. The TOTP code is checked by the caller,
// which keeps the last step each user used.
func checkPassword(path, name, password string) (*user, error) {
	f, err := readUsers(path)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(f.Users, func(u userRecord) bool { return u.Name == name })
	rec := &dummyRecord
	if i >= 0 {
		rec = &f.Users[i]
	}
	hash, key := rec.derive(password)
	if subtle.ConstantTimeCompare(hash, rec.Hash) != 1 || i < 0 {
		return nil, ErrSignIn
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("desk: opening %s: %w", name, err)
	}
	if len(rec.Sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("desk users file: the record of %s is damaged", name)
	}
	plain, err := aead.Open(nil, rec.Sealed[:aead.NonceSize()], rec.Sealed[aead.NonceSize():], additionalData(name))
	if err != nil {
		return nil, fmt.Errorf("desk users file: the record of %s does not open with its own password (damaged or altered): %w", name, err)
	}
	var sp sealedPart
	if err := json.Unmarshal(plain, &sp); err != nil {
		return nil, fmt.Errorf("desk users file: the record of %s: %w", name, err)
	}
	return &user{name: name, secret: sp.TOTPSecret, token: sp.Token}, nil
}
