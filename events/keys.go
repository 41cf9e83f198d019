package events

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// SaltSize is the size of a disclosure's salt in bytes.
const SaltSize = 16

// KeyID returns the fingerprint of an Ed25519 public key that DSSE envelopes
// carry as keyid: lower-case hex of SHA-256 over the 32 key bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hexLower(sum[:])
}

// DeriveSalt returns a disclosure's salt: the first 16 bytes of
// HMAC-SHA256(saltSecret, "spoor/salt/v1\x00" || id), in standard padded
// base64. Deriving it from the id (not drawing it at random) makes re-signing
// the same disclosure give the same bytes, so a retry is recognised.
func DeriveSalt(saltSecret []byte, id string) string {
	m := hmac.New(sha256.New, saltSecret)
	m.Write([]byte("spoor/salt/v1\x00"))
	m.Write([]byte(id))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:SaltSize])
}

// PartyKey is what an organisation's system holds to publish: its Ed25519
// signing key and its salt secret. It is stored as a JSON file of mode 0600.
type PartyKey struct {
	Party      string
	Private    ed25519.PrivateKey
	SaltSecret []byte
}

// Public returns the public half of the signing key.
func (k *PartyKey) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// KeyID returns the fingerprint of the public key.
func (k *PartyKey) KeyID() string { return KeyID(k.Public()) }

// GeneratePartyKey makes a new signing key and salt secret for a party.
func GeneratePartyKey(party string) (*PartyKey, error) {
	if !ValidPartyID(party) {
		return nil, fmt.Errorf("party id %q: must be lower-case letters, digits and '-'", party)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("couldn't generate key: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("couldn't generate salt secret: %w", err)
	}
	return &PartyKey{Party: party, Private: priv, SaltSecret: secret}, nil
}

type partyKeyFile struct {
	Type       string `json:"type"`
	Party      string `json:"party"`
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
	SaltSecret string `json:"salt_secret"`
}

const partyKeyType = "spoor-party-key/v1"

// MarshalJSON encodes the key file. The private seed is in it: keep it 0600.
func (k *PartyKey) MarshalJSON() ([]byte, error) {
	return json.MarshalIndent(partyKeyFile{
		Type:       partyKeyType,
		Party:      k.Party,
		KeyID:      k.KeyID(),
		PublicKey:  base64.StdEncoding.EncodeToString(k.Public()),
		PrivateKey: base64.StdEncoding.EncodeToString(k.Private.Seed()),
		SaltSecret: base64.StdEncoding.EncodeToString(k.SaltSecret),
	}, "", "  ")
}

// ParsePartyKey decodes a party key file and checks that its parts agree.
func ParsePartyKey(b []byte) (*PartyKey, error) {
	var f partyKeyFile
	if err := strictJSONNaming(b, &f, true); err != nil {
		return nil, fmt.Errorf("party key file: %w", err)
	}
	if f.Type != partyKeyType {
		return nil, fmt.Errorf("party key file: type is %q, want %q", f.Type, partyKeyType)
	}
	if !ValidPartyID(f.Party) {
		return nil, fmt.Errorf("party key file: party %q is not a party id", f.Party)
	}
	seed, err := base64.StdEncoding.Strict().DecodeString(f.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("party key file: private_key must be a 32-byte seed in base64")
	}
	secret, err := base64.StdEncoding.Strict().DecodeString(f.SaltSecret)
	if err != nil || len(secret) < 16 {
		return nil, errors.New("party key file: salt_secret must be at least 16 bytes in base64")
	}
	k := &PartyKey{Party: f.Party, Private: ed25519.NewKeyFromSeed(seed), SaltSecret: secret}
	if f.PublicKey != base64.StdEncoding.EncodeToString(k.Public()) || f.KeyID != k.KeyID() {
		return nil, errors.New("party key file: public_key or key_id does not match private_key")
	}
	return k, nil
}

// LoadPartyKey reads a party key file.
func LoadPartyKey(path string) (*PartyKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read party key: %w", err)
	}
	k, err := ParsePartyKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

type subjectKeyFile struct {
	Type   string `json:"type"`
	KeyID  string `json:"key_id"`
	Secret string `json:"secret"`
	// VRFSecret is optional: the VRF secret key that goes with this key id
	// (issue 23), 32 bytes in standard base64. It is kept in the same file
	// because it is held by exactly the same people.
	VRFSecret string `json:"vrf_secret,omitempty"`
}

const subjectKeyType = "spoor-subject-key/v1"

// GenerateSubjectKey makes a new pseudonym key K_v named id.
func GenerateSubjectKey(id string) (SubjectKey, error) {
	if !keyIDRE.MatchString(id) {
		return SubjectKey{}, fmt.Errorf("pseudonym key id %q: must be letters, digits, '.', '_' or '-'", id)
	}
	s := make([]byte, SubjectKeySize)
	if _, err := rand.Read(s); err != nil {
		return SubjectKey{}, fmt.Errorf("couldn't generate pseudonym key: %w", err)
	}
	return SubjectKey{ID: id, Secret: s}, nil
}

// MarshalJSON encodes the pseudonym key file. Keep it 0600.
func (k SubjectKey) MarshalJSON() ([]byte, error) {
	f := subjectKeyFile{Type: subjectKeyType, KeyID: k.ID, Secret: base64.StdEncoding.EncodeToString(k.Secret)}
	if k.VRF != nil {
		f.VRFSecret = base64.StdEncoding.EncodeToString(k.VRF.Bytes())
	}
	return json.MarshalIndent(f, "", "  ")
}

// ParseSubjectKey decodes a pseudonym key file.
func ParseSubjectKey(b []byte) (SubjectKey, error) {
	var f subjectKeyFile
	if err := strictJSONNaming(b, &f, true); err != nil {
		return SubjectKey{}, fmt.Errorf("pseudonym key file: %w", err)
	}
	if f.Type != subjectKeyType || !keyIDRE.MatchString(f.KeyID) {
		return SubjectKey{}, fmt.Errorf("pseudonym key file: want type %q and a key_id", subjectKeyType)
	}
	s, err := base64.StdEncoding.Strict().DecodeString(f.Secret)
	if err != nil || len(s) != SubjectKeySize {
		return SubjectKey{}, fmt.Errorf("pseudonym key file: secret must be %d bytes in base64", SubjectKeySize)
	}
	k := SubjectKey{ID: f.KeyID, Secret: s}
	if f.VRFSecret != "" {
		v, err := base64.StdEncoding.Strict().DecodeString(f.VRFSecret)
		if err != nil {
			return SubjectKey{}, fmt.Errorf("pseudonym key file: vrf_secret must be %d bytes in base64", aboutchild.SecretKeySize)
		}
		if k.VRF, err = aboutchild.ParseSecretKey(v); err != nil {
			return SubjectKey{}, fmt.Errorf("pseudonym key file: vrf_secret: %w", err)
		}
	}
	return k, nil
}

// LoadSubjectKey reads a pseudonym key file.
func LoadSubjectKey(path string) (SubjectKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return SubjectKey{}, fmt.Errorf("couldn't read pseudonym key: %w", err)
	}
	k, err := ParseSubjectKey(b)
	if err != nil {
		return SubjectKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
