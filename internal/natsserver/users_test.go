package natsserver_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/internal/natsserver"
)

// TestNATSUsersFile: the users file follows the covenant. Every party gets
// a user (a seed is made for one that has none), a user of a party outside
// the covenant is not admitted, and removing a party's line replaces its
// key at the next start.
func TestNATSUsersFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.json")
	creds := filepath.Join(dir, "nats-credentials")
	log := slog.New(slog.DiscardHandler)
	users, err := natsserver.LoadUsers(path, creds, []string{"gemeente-a", "school-b"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 {
		t.Fatalf("%d users for 2 parties", len(users))
	}
	first := users[0]
	var file natsserver.UsersFile
	if err := json.Unmarshal([]byte(readFile(t, path)), &file); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"gemeente-a", "school-b"} {
		seed := strings.TrimSpace(readFile(t, filepath.Join(creds, p+".nk")))
		if strings.Contains(readFile(t, path), seed) {
			t.Errorf("the users file holds the seed of %s", p)
		}
	}
	// A party outside the covenant, and a party whose line was removed.
	file.Users = append(file.Users[1:], natsserver.User{Party: "buiten-convenant", NKey: first.NKey})
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	users, err = natsserver.LoadUsers(path, creds, []string{"gemeente-a", "school-b"}, log)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range users {
		got[u.Party] = u.NKey
	}
	if _, ok := got["buiten-convenant"]; ok || len(got) != 2 {
		t.Fatalf("admitted users %v, want exactly the covenant's two", got)
	}
	if got["gemeente-a"] == "" || got["gemeente-a"] == first.NKey {
		t.Fatal("the removed party did not get a new key")
	}
	seed := strings.TrimSpace(readFile(t, filepath.Join(creds, "gemeente-a.nk")))
	if !strings.HasPrefix(seed, "SU") {
		t.Fatal("the new seed file does not hold a user seed")
	}

	for _, bad := range []string{`{"format":"other"}`, `{"format":"spoor-nats-users/v1","users":[{"party":"x","nkey":"not-a-key"}]}`, `[`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := natsserver.LoadUsers(path, creds, []string{"gemeente-a"}, log); err == nil {
			t.Errorf("users file %s was accepted", bad)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
