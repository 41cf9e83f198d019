package events_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

func TestKeyIDIsFingerprint(t *testing.T) {
	// RFC 8032 test 1's public key; its SHA-256 computed here, not by the package.
	pub, _ := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	sum := sha256.Sum256(pub)
	if got, want := events.KeyID(ed25519.PublicKey(pub)), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("KeyID = %s, want %s", got, want)
	}
	k, err := events.GeneratePartyKey("gemeente-soest")
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID() != events.KeyID(k.Public()) || len(k.KeyID()) != 64 || strings.ToLower(k.KeyID()) != k.KeyID() {
		t.Errorf("PartyKey.KeyID = %q", k.KeyID())
	}
}

func TestPartyKeyFile(t *testing.T) {
	k, err := events.GeneratePartyKey("wijkteams-amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.SaltSecret) != 32 || len(k.Private) != ed25519.PrivateKeySize {
		t.Fatalf("generated key has %d-byte salt secret and %d-byte private key", len(k.SaltSecret), len(k.Private))
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["type"] != "spoor-party-key/v1" || fields["party"] != k.Party || fields["key_id"] != k.KeyID() ||
		fields["private_key"] != base64.StdEncoding.EncodeToString(k.Private.Seed()) {
		t.Errorf("key file fields: %v", fields)
	}

	path := filepath.Join(t.TempDir(), "party.key")
	// Mode 0600 and never overwriting are internal/durable's (TestWriteNewFileNeverReplaces).
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := events.LoadPartyKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Party != k.Party || !got.Private.Equal(k.Private) || !bytes.Equal(got.SaltSecret, k.SaltSecret) {
		t.Error("loaded key differs from the written one")
	}

	if _, err := events.LoadPartyKey(filepath.Join(t.TempDir(), "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadPartyKey(missing) = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := events.LoadPartyKey(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadPartyKey(bad) = %v, want an error naming the file", err)
	}
}

func TestGenerateRejectsBadNames(t *testing.T) {
	for _, party := range []string{"", "Gemeente", "gemeente amersfoort", "-x", "a.b", strings.Repeat("a", 64)} {
		if _, err := events.GeneratePartyKey(party); err == nil {
			t.Errorf("GeneratePartyKey(%q) accepted it", party)
		}
	}
	for _, id := range []string{"", "kv 1", ".kv", strings.Repeat("k", 64)} {
		if _, err := events.GenerateSubjectKey(id); err == nil {
			t.Errorf("GenerateSubjectKey(%q) accepted it", id)
		}
	}
}

// partyKeyJSON returns the key file of k with one field replaced (or removed
// when value is nil), as raw JSON.
func partyKeyJSON(t testing.TB, k *events.PartyKey, field string, value any) []byte {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if field != "" {
		if value == nil {
			delete(m, field)
		} else {
			m[field] = value
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParsePartyKeyRejects(t *testing.T) {
	k := computeVector(t, "basic").Key
	other := computeVector(t, "full").Key
	b64 := base64.StdEncoding.EncodeToString
	if _, err := events.ParsePartyKey(partyKeyJSON(t, k, "", nil)); err != nil {
		t.Fatalf("the unchanged file: %v", err)
	}
	cases := []struct {
		name     string
		in       []byte
		fragment string
	}{
		{"not JSON", []byte("-----BEGIN PRIVATE KEY-----"), "party key file"},
		{"trailing data", append(partyKeyJSON(t, k, "", nil), "{}"...), "data after the JSON object"},
		{"unknown field", partyKeyJSON(t, k, "comment", "x"), `unknown field "comment"`},
		{"wrong type", partyKeyJSON(t, k, "type", "spoor-party-key/v2"), `want "spoor-party-key/v1"`},
		{"bad party", partyKeyJSON(t, k, "party", "SWV De Eem"), "is not a party id"},
		{"seed missing", partyKeyJSON(t, k, "private_key", nil), "private_key must be a 32-byte seed"},
		{"seed of 64 bytes", partyKeyJSON(t, k, "private_key", b64(k.Private)), "private_key must be a 32-byte seed"},
		{"seed unpadded", partyKeyJSON(t, k, "private_key", strings.TrimRight(b64(k.Private.Seed()), "=")), "private_key must be a 32-byte seed"},
		{"salt secret of 15 bytes", partyKeyJSON(t, k, "salt_secret", b64(make([]byte, 15))), "salt_secret must be at least 16 bytes"},
		{"public key of another key", partyKeyJSON(t, k, "public_key", b64(other.Public())), "does not match private_key"},
		{"key id of another key", partyKeyJSON(t, k, "key_id", other.KeyID()), "does not match private_key"},
		{"number for a string", partyKeyJSON(t, k, "party", 7), "wrong type"},
	}
	for _, c := range cases {
		if _, err := events.ParsePartyKey(c.in); err == nil || !strings.Contains(err.Error(), c.fragment) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.fragment)
		}
	}
}

func TestSubjectKeyFile(t *testing.T) {
	k, err := events.GenerateSubjectKey("kv-2025-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Secret) != events.SubjectKeySize {
		t.Fatalf("secret of %d bytes", len(k.Secret))
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "subject.key")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := events.LoadSubjectKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || !bytes.Equal(got.Secret, k.Secret) {
		t.Error("loaded pseudonym key differs")
	}
	for _, bad := range []string{
		`{"type":"spoor-subject-key/v1","key_id":"kv","secret":"AAAA"}`,
		`{"type":"spoor-party-key/v1","key_id":"kv","secret":"` + base64.StdEncoding.EncodeToString(k.Secret) + `"}`,
		`{"type":"spoor-subject-key/v1","key_id":"","secret":"` + base64.StdEncoding.EncodeToString(k.Secret) + `"}`,
		`{"type":"spoor-subject-key/v1","key_id":"kv","secret":"` + base64.StdEncoding.EncodeToString(k.Secret) + `","x":1}`,
		``,
	} {
		if _, err := events.ParseSubjectKey([]byte(bad)); err == nil {
			t.Errorf("ParseSubjectKey(%s) accepted it", bad)
		}
	}
	if _, err := events.LoadSubjectKey(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSubjectKey(missing) = %v", err)
	}
}

// FuzzParsePartyKey feeds arbitrary bytes to ParsePartyKey. Properties: it
// never panics; a key it accepts is consistent (the public key is the seed's)
// and survives MarshalJSON and ParsePartyKey unchanged.
func FuzzParsePartyKey(f *testing.F) {
	for _, name := range vectorNames(f) {
		k := computeVector(f, name).Key
		b, err := json.Marshal(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(partyKeyJSON(f, k, "key_id", strings.ToUpper(k.KeyID())))
		f.Add(partyKeyJSON(f, k, "salt_secret", base64.StdEncoding.EncodeToString(make([]byte, 15))))
	}
	f.Add([]byte(`{"type":"spoor-party-key/v1"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := events.ParsePartyKey(b)
		if err != nil {
			if k != nil {
				t.Fatal("ParsePartyKey returned a key with an error")
			}
			return
		}
		if !events.ValidPartyID(k.Party) || len(k.Private) != ed25519.PrivateKeySize || len(k.SaltSecret) < 16 {
			t.Fatalf("accepted an inconsistent key: party %q, %d-byte key, %d-byte salt secret", k.Party, len(k.Private), len(k.SaltSecret))
		}
		again, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := events.ParsePartyKey(again)
		if err != nil {
			t.Fatalf("re-marshalled key does not parse: %v", err)
		}
		if k2.Party != k.Party || !k2.Private.Equal(k.Private) || !bytes.Equal(k2.SaltSecret, k.SaltSecret) {
			t.Fatal("key changed in a round trip")
		}
	})
}
