package notify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/spoor-ledger/spoor/verifier/webhook"
	"os"
)

// The notification key file (spoor keygen --notify): the ledger's Ed25519
// signing key for webhooks. Its public_key goes into the covenant as
// notification_key; the file stays with the operator (mode 0600).
const keyFileType = "spoor-notification-key/v1"

type keyFile struct {
	Type       string `json:"type"`
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
}

// GenerateKey makes a notification key and returns its key file.
func GenerateKey() ([]byte, ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't generate the notification key: %w", err)
	}
	b, err := MarshalKey(priv)
	return b, pub, err
}

// MarshalKey encodes priv as a notification key file.
func MarshalKey(priv ed25519.PrivateKey) ([]byte, error) {
	pub := priv.Public().(ed25519.PublicKey)
	b, err := json.MarshalIndent(keyFile{Type: keyFileType, KeyID: webhook.KeyID(pub),
		PublicKey: base64.StdEncoding.EncodeToString(pub), PrivateKey: base64.StdEncoding.EncodeToString(priv.Seed())}, "", "  ")
	return append(b, '\n'), err
}

// LoadKey reads a notification key file and checks that its parts agree.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the notification key: %w", err)
	}
	var f keyFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.Type != keyFileType {
		return nil, fmt.Errorf("%s: not a %s file: %w", path, keyFileType, errors.Join(err, errors.New("bad type")))
	}
	seed, err := base64.StdEncoding.Strict().DecodeString(f.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: private_key must be a 32-byte seed in base64", path)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	if f.PublicKey != base64.StdEncoding.EncodeToString(pub) || f.KeyID != webhook.KeyID(pub) {
		return nil, fmt.Errorf("%s: public_key or key_id does not match private_key", path)
	}
	return priv, nil
}
