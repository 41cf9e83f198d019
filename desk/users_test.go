package desk

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestUsersFile: a desk user added with a password opens with that
// password and no other; the file holds neither the token, the password
// nor the TOTP secret in the clear; a name is added once; a sealed part
// moved to another record does not open.
func TestUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	const token = "ledger-token-of-desk-1-abcdef"
	const password = "correct horse battery"
	secret, err := AddUser(path, "desk-1", password, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddUser(path, "desk-2", "another long passphrase", "ledger-token-of-desk-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := AddUser(path, "desk-1", password, token); !errors.Is(err, ErrUserExists) {
		t.Errorf("adding desk-1 twice: %v, want ErrUserExists", err)
	}
	if _, err := AddUser(path, "desk-3", "short", token); err == nil {
		t.Error("a five-character password was taken")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v, want 0600", st.Mode().Perm())
	}
	for _, secretText := range []string{token, password, TOTPSecretText(secret), string(secret)} {
		if bytes.Contains(raw, []byte(secretText)) {
			t.Errorf("the users file holds a secret in the clear (%d bytes)", len(secretText))
		}
	}

	u, err := checkPassword(path, "desk-1", password)
	if err != nil {
		t.Fatal(err)
	}
	if u.token != token || !bytes.Equal(u.secret, secret) {
		t.Error("the sealed part did not give back the token and secret")
	}
	if _, err := checkPassword(path, "desk-1", password+"x"); !errors.Is(err, ErrSignIn) {
		t.Errorf("wrong password: %v, want ErrSignIn", err)
	}
	if _, err := checkPassword(path, "nobody", password); !errors.Is(err, ErrSignIn) {
		t.Errorf("unknown name: %v, want ErrSignIn", err)
	}

	// Move desk-2's sealed part into desk-1's record, with desk-1's hash
	// kept: the password still checks, the sealed part must not open.
	var f usersFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	f.Users[0].Sealed = f.Users[1].Sealed
	b, _ := json.Marshal(f)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := checkPassword(path, "desk-1", password); err == nil || errors.Is(err, ErrSignIn) {
		t.Errorf("a swapped sealed part: %v, want a damaged-record error", err)
	}
}
