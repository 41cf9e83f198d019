package natsserver

// Who may connect to the embedded server: one NATS user per covenant party,
// listed in the operator's users file (spoor serve --nats-users).
//
// A party's credential is an NKey: an Ed25519 key pair of which the server
// knows only the public half (the users file), and the party keeps the seed
// (a file it passes to spoor publish --nats-nkey, or to nats.go's
// NkeyOptionFromSeed). On first start with --nats-users, serve makes a seed
// for every party that has no user yet and writes it to
// DATA/nats-credentials/<party>.nk (0600): the operator hands each party its
// own file over a secure channel and then deletes it from the ledger's
// host. A party may instead make its own key pair (nk -gen user -pubout,
// the NATS nk tool) and send only the public key, which the operator puts
// in the users file.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/nats-io/nkeys"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
)

// UsersFormat names the version of the users file.
const UsersFormat = "spoor-nats-users/v1"

// UsersFile is the --nats-users file: the public NKey of each party's
// NATS user. It holds no secret.
type UsersFile struct {
	Format string `json:"format"`
	Users  []User `json:"users"`
}

// User is one party's NATS user.
type User struct {
	Party string `json:"party"`
	// NKey is the user's public key (it starts with U).
	NKey string `json:"nkey"`
}

// LoadUsers reads the users file at path, creating users for every
// covenant party that has none: their seeds go to credentialsDir as
// <party>.nk (0600) and their public keys into the file. It returns the
// users of the parties in the covenant; a user of a party outside it is
// left out with a warning, so the file cannot let in a party the covenant
// does not.
func LoadUsers(path, credentialsDir string, parties []string, log *slog.Logger) ([]User, error) {
	var file UsersFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		file.Format = UsersFormat
	case err != nil:
		return nil, fmt.Errorf("couldn't read --nats-users: %w", err)
	default:
		if err := json.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("--nats-users %s: %w", path, err)
		}
		if file.Format != UsersFormat {
			return nil, fmt.Errorf("--nats-users %s: format is %q, want %q", path, file.Format, UsersFormat)
		}
	}
	have := map[string]bool{}
	for i, u := range file.Users {
		if !events.ValidPartyID(u.Party) || !nkeys.IsValidPublicUserKey(u.NKey) {
			return nil, fmt.Errorf("--nats-users %s: user %d needs a party id and a public user NKey (U...)", path, i)
		}
		if have[u.Party] {
			return nil, fmt.Errorf("--nats-users %s: party %s has two users", path, u.Party)
		}
		have[u.Party] = true
	}
	var made []string
	for _, p := range parties {
		if have[p] {
			continue
		}
		pub, err := writePartySeed(credentialsDir, p)
		if err != nil {
			return nil, err
		}
		file.Users = append(file.Users, User{Party: p, NKey: pub})
		made = append(made, p)
	}
	if len(made) > 0 {
		out, err := json.MarshalIndent(file, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := durable.WriteFile(path, append(out, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("couldn't write --nats-users: %w", err)
		}
		log.Warn("made NATS users for parties that had none; hand each party its own seed file over a secure channel, then delete it here",
			"parties", len(made), "credentials", credentialsDir, "users_file", path)
	}
	var out []User
	for _, u := range file.Users {
		if slices.Contains(parties, u.Party) {
			out = append(out, u)
		} else {
			log.Warn("NATS user of a party outside the covenant is not admitted", "party", u.Party)
		}
	}
	return out, nil
}

// writePartySeed makes a user NKey for party, writes its seed to
// dir/<party>.nk (0600) and returns the public key.
func writePartySeed(dir, party string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("couldn't make a NATS key for %s: %w", party, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	path := filepath.Join(dir, party+".nk")
	// A seed left from an earlier user of the party (one the operator
	// removed from the users file to replace it) is replaced.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("couldn't replace the NATS seed of %s: %w", party, err)
	}
	if err := durable.WriteNewFile(path, append(seed, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("couldn't write the NATS seed of %s: %w", party, err)
	}
	return pub, nil
}
