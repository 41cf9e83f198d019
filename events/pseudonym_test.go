package events_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

const katPath = vectorDir + "/pseudonyms.json"

// katFile is testdata/envelope/pseudonyms.json: known answers for Pseudonym.
type katFile struct {
	Comment string `json:"comment"`
	Keys    []struct {
		KeyID     string `json:"key_id"`
		SecretHex string `json:"secret_hex"`
	} `json:"keys"`
	Vectors []katVector `json:"vectors"`
}

type katVector struct {
	KeyID     string        `json:"key_id"`
	IDType    events.IDType `json:"id_type"`
	Number    string        `json:"number"`
	Pseudonym string        `json:"pseudonym"`
}

func loadKAT(tb testing.TB) (*katFile, map[string]events.SubjectKey) {
	tb.Helper()
	b, err := os.ReadFile(katPath)
	if err != nil {
		tb.Fatal(err)
	}
	var kat katFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kat); err != nil {
		tb.Fatalf("%s: %v", katPath, err)
	}
	keys := map[string]events.SubjectKey{}
	for _, k := range kat.Keys {
		secret, err := hex.DecodeString(k.SecretHex)
		if err != nil {
			tb.Fatal(err)
		}
		keys[k.KeyID] = events.SubjectKey{ID: k.KeyID, Secret: secret}
	}
	return &kat, keys
}

// TestPseudonymKnownAnswers checks Pseudonym against stored answers, and the
// stored answers against this test's own HMAC: a changed derivation would
// orphan every pseudonym in every log, so it must never change by accident.
func TestPseudonymKnownAnswers(t *testing.T) {
	kat, keys := loadKAT(t)
	if len(kat.Vectors) < 6 {
		t.Fatalf("only %d vectors", len(kat.Vectors))
	}
	for i, v := range kat.Vectors {
		key, ok := keys[v.KeyID]
		if !ok {
			t.Fatalf("vector %d: no key %q", i, v.KeyID)
		}
		got, err := events.Pseudonym(key, v.IDType, v.Number)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		m := hmac.New(sha256.New, key.Secret)
		m.Write([]byte("spoor/subject/v1\x00" + string(v.IDType) + "\x00" + v.Number))
		if want := hex.EncodeToString(m.Sum(nil)); got != want {
			t.Errorf("vector %d: Pseudonym = %s, the definition gives %s", i, got, want)
		}
		if updateGolden() {
			kat.Vectors[i].Pseudonym = got
			continue
		}
		if got != v.Pseudonym {
			t.Errorf("vector %d (%s under %s): Pseudonym = %s, stored %s", i, v.IDType, v.KeyID, got, v.Pseudonym)
		}
	}
	if updateGolden() {
		b, err := json.MarshalIndent(kat, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(katPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The golden envelopes use pseudonyms from this file.
	for _, name := range vectorNames(t) {
		s := computeVector(t, name).Disclosure.Subject
		found := false
		for _, v := range kat.Vectors {
			found = found || (v.KeyID == s.KeyID && v.IDType == s.IDType && v.Pseudonym == s.Pseudonym)
		}
		if !found {
			t.Errorf("vector %s: its subject pseudonym is not in %s", name, filepath.Base(katPath))
		}
	}
}

func TestPseudonymSeparatesKeysAndTypes(t *testing.T) {
	_, keys := loadKAT(t)
	a, _ := events.Pseudonym(keys["kv-2025-1"], events.IDTypeBSN, "999990019")
	b, _ := events.Pseudonym(keys["kv-2026-1"], events.IDTypeBSN, "999990019")
	c, _ := events.Pseudonym(keys["kv-2025-1"], events.IDTypeBSN, "999990032")
	if a == b || a == c || b == c {
		t.Error("different keys or numbers gave the same pseudonym")
	}
	again, _ := events.Pseudonym(keys["kv-2025-1"], events.IDTypeBSN, "999990019")
	if again != a {
		t.Error("Pseudonym is not deterministic")
	}
	s, err := events.SubjectFor(keys["kv-2025-1"], events.IDTypeBSN, "999990019")
	if err != nil {
		t.Fatal(err)
	}
	if s != (events.Subject{IDType: events.IDTypeBSN, KeyID: "kv-2025-1", Pseudonym: a}) {
		t.Errorf("SubjectFor = %+v", s)
	}
}

func TestPseudonymRejects(t *testing.T) {
	_, keys := loadKAT(t)
	key := keys["kv-2025-1"]
	if _, err := events.Pseudonym(key, events.IDTypeBSN, "999990018"); !errors.Is(err, events.ErrInvalidNumber) {
		t.Errorf("Pseudonym of a number failing the elfproef: %v", err)
	}
	if _, err := events.SubjectFor(key, "sofinummer", "999990019"); !errors.Is(err, events.ErrInvalidNumber) {
		t.Errorf("SubjectFor with an unknown id type: %v", err)
	}
	short := events.SubjectKey{ID: "kv-short", Secret: key.Secret[:16]}
	if _, err := events.Pseudonym(short, events.IDTypeBSN, "999990019"); err == nil || !strings.Contains(err.Error(), "want 32 bytes") {
		t.Errorf("Pseudonym with a 16-byte key: %v", err)
	}
}

// elfproef is this test's own reading of the BSN check, to compare with
// CheckNumber: 9*d1 + 8*d2 + ... + 2*d8 - d9 is a non-zero multiple of 11.
func elfproef(n string) int {
	sum := 0
	for i := 0; i < 8; i++ {
		sum += (9 - i) * int(n[i]-'0')
	}
	return sum - int(n[8]-'0')
}

func TestCheckNumberBSN(t *testing.T) {
	valid := []string{
		// From the 9999 test range, checked by hand: e.g. 999990019 gives
		// 81+72+63+54+45+0+0+2-9 = 308 = 28*11.
		"999990007", "999990019", "999990020", "999990032", "999990044",
		"999990056", "999990068", "999990081", "999990093", "999990111",
		"111222333", // the example many elfproef descriptions use: 66 = 6*11
	}
	for _, n := range valid {
		if s := elfproef(n); s == 0 || s%11 != 0 {
			t.Fatalf("test table error: %s has weighted sum %d", n, s)
		}
		if err := events.CheckNumber(events.IDTypeBSN, n); err != nil {
			t.Errorf("CheckNumber(bsn, %s) = %v", n, err)
		}
	}
	invalid := []struct{ number, fragment string }{
		{"", "exactly 9 digits, got 0"},
		{"99999001", "exactly 9 digits, got 8"},
		{"9999900190", "exactly 9 digits, got 10"},
		{"99999001a", "character 9 is not one"},
		{"9999 0019", "character 5 is not one"},
		{"9999.9001", "character 5 is not one"},
		{"-99990019", "character 1 is not one"},
		{"９99990019", "exactly 9 digits"}, // a full-width digit is three bytes
		{"999990018", "fails the elfproef"},
		{"999990010", "fails the elfproef"},
		{"999990091", "fails the elfproef"}, // last two digits swapped
		{"000000000", "fails the elfproef"}, // sum 0
		{"000000011", "fails the elfproef"}, // sum 1
	}
	for _, c := range invalid {
		err := events.CheckNumber(events.IDTypeBSN, c.number)
		if !errors.Is(err, events.ErrInvalidNumber) || !strings.Contains(err.Error(), c.fragment) {
			t.Errorf("CheckNumber(bsn, %q) = %v, want ErrInvalidNumber with %q", c.number, err, c.fragment)
		}
	}
	// Every single-digit change of a valid BSN fails: that is what the check is for.
	for i := 0; i < 9; i++ {
		for d := byte('0'); d <= '9'; d++ {
			n := []byte("999990019")
			if n[i] == d {
				continue
			}
			n[i] = d
			if events.CheckNumber(events.IDTypeBSN, string(n)) == nil {
				t.Errorf("CheckNumber accepts %s, one digit off a valid BSN", n)
			}
		}
	}
}

// TestCheckNumberOnderwijsnummer: an onderwijsnummer starts with "10" and its
// weighted sum (the BSN weights, the last digit -1) leaves remainder 5 after
// division by 11. This matches python-stdnum's stdnum.nl.onderwijsnummer,
// whose examples are 101222331 (valid) and 100252333 (invalid).
func TestCheckNumberOnderwijsnummer(t *testing.T) {
	for _, n := range []string{"101222331", "100000004", "100000016", "100000028", "100000041"} {
		if s := elfproef(n); s%11 != 5 || !strings.HasPrefix(n, "10") {
			t.Fatalf("test table error: %s has weighted sum %d", n, s)
		}
		if err := events.CheckNumber(events.IDTypeOnderwijsnummer, n); err != nil {
			t.Errorf("CheckNumber(onderwijsnummer, %s) = %v", n, err)
		}
		if events.CheckNumber(events.IDTypeBSN, n) == nil {
			t.Errorf("%s passes as a BSN too", n)
		}
	}
	for _, n := range []string{
		"100252333", // python-stdnum's invalid example
		"101222332", // remainder 4
		"999990019", // a valid BSN: remainder 0
		"200000002", // remainder 5 but does not start with 10
		"10122233",  // 8 digits
		"10122233x",
	} {
		if err := events.CheckNumber(events.IDTypeOnderwijsnummer, n); !errors.Is(err, events.ErrInvalidNumber) {
			t.Errorf("CheckNumber(onderwijsnummer, %s) = %v, want ErrInvalidNumber", n, err)
		}
	}
	if s := elfproef("200000002"); s%11 != 5 {
		t.Fatalf("test table error: 200000002 has weighted sum %d", s)
	}
}
