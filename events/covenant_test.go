package events

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"
)

func init() {
	// The other golden tests of this package use the same flag; whichever
	// test file initialises first defines it.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata")
	}
}

// updating reports whether the test runs with -update.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// testSeed derives the fixed key seeds of the test covenant in
// testdata/covenant (the public keys written there come from these).
func testSeed(name string) []byte {
	s := sha256.Sum256([]byte("spoor covenant test key " + name))
	return s[:]
}

func testPartyPriv(name string) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(testSeed(name)) }

// testAdmin returns the signed-note key pair "covenant-admin-<n>.test",
// built from a fixed seed so that the golden files are reproducible.
func testAdmin(t testing.TB, n string) (skey, vkey string) {
	t.Helper()
	name := "covenant-admin-" + n + ".test"
	seed := testSeed("admin-" + n)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Split(vkey, "+")[1]
	skey = "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x01}, seed...))
	if _, err := note.NewSigner(skey); err != nil {
		t.Fatalf("test admin key is malformed: %v", err)
	}
	return skey, vkey
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "covenant", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with a file in testdata/covenant, or rewrites it
// under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "covenant", name)
	if updating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what SignCovenant makes now (run with -update if the change is intended, then fix v2.yaml's previous)", name)
	}
}

func mustParse(t testing.TB, b []byte) *Covenant {
	t.Helper()
	c, err := ParseCovenantYAML(b)
	if err != nil {
		t.Fatalf("ParseCovenantYAML: %v", err)
	}
	return c
}

func mustSign(t testing.TB, yml []byte, skey string) *SignedCovenant {
	t.Helper()
	env, err := SignCovenant(yml, skey)
	if err != nil {
		t.Fatalf("SignCovenant: %v", err)
	}
	// A later version is not checked by ParseSignedCovenant on its own.
	sc, err := ParseSignedCovenant(env)
	if err != nil {
		t.Fatalf("ParseSignedCovenant: %v", err)
	}
	return sc
}

func TestParseCovenantValid(t *testing.T) {
	c := mustParse(t, readTestdata(t, "valid.yaml"))
	if c.Version != 1 || c.Origin != "spoor.example/test-regio" || !c.CentralDesk {
		t.Errorf("decoded header wrong: version %d origin %q central_desk %v", c.Version, c.Origin, c.CentralDesk)
	}
	if len(c.Parties) != 5 || c.Parties[2].Keys[0].ValidUntil == nil {
		t.Fatalf("decoded parties wrong: %+v", c.Parties)
	}
	if got := c.Rules.Consent.ByAgeBand[Age12To15]; got != ConsentChildAndParents {
		t.Errorf("by_age_band 12-15 = %q", got)
	}
	if got := c.RetentionDays("gezondheid"); got != 730 {
		t.Errorf("RetentionDays(gezondheid) = %d, want 730", got)
	}
	if got := c.RetentionDays("identificatie"); got != 1825 {
		t.Errorf("RetentionDays(identificatie) = %d, want the default 1825", got)
	}
	if got := c.RetentionDaysFor([]string{"identificatie", "justitiele-gegevens", "gezondheid"}); got != 365 {
		t.Errorf("RetentionDaysFor = %d, want the shortest, 365", got)
	}
	if got := c.RetentionDaysFor(nil); got != 1825 {
		t.Errorf("RetentionDaysFor(nil) = %d, want the default", got)
	}
	for _, tc := range []struct{ got, want string }{
		{c.CategoryLabel("justitiele-gegevens"), "Justitiële gegevens"},
		{c.CategoryLabel("nope"), "nope"},
		{c.PurposeLabel("mdo-overleg"), "Multidisciplinair overleg"},
		{c.GroundLabel("c"), "Wettelijke verplichting (AVG art. 6 lid 1 sub c)"},
		{c.ExceptionLabel("avg-9-2-h"), "Gezondheidszorg of sociale diensten (AVG art. 9 lid 2 sub h)"},
		{c.StatuteLabel("leerplichtwet-21"), "Leerplichtwet 1969 art. 21"},
		{c.RoleLabel("leerplichtambtenaar"), "Leerplichtambtenaar"},
		{c.PartyName("ggd-a"), "GGD A"},
		{c.PartyName("elders"), "elders"},
	} {
		if tc.got != tc.want {
			t.Errorf("label %q, want %q", tc.got, tc.want)
		}
	}
	if p, ok := c.Party("school-a"); !ok || p.Kind != KindSchoolbestuur {
		t.Errorf("Party(school-a) = %+v, %v", p, ok)
	}
	if _, ok := c.Party("elders"); ok {
		t.Error("Party(elders) found")
	}
}

// TestParseCovenantBad changes one thing in the valid covenant per case and
// expects exactly one problem, naming its field.
func TestParseCovenantBad(t *testing.T) {
	valid := string(readTestdata(t, "valid.yaml"))
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("test case is stale: %q is not in valid.yaml", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	gemeenteKey := `      - public_key: "uIP09j6DXvlxMNr2kiHloTY66OGqEarQlhg29ps0dB0="` + "\n"
	for _, tc := range []struct {
		name   string
		edit   func(string) string
		field  string
		reason string
	}{
		{"unknown top-level field", replace("central_desk: true\n", "central_desk: true\ncolour: red\n"), "colour", "unknown field"},
		{"contact without the central desk", replace("central_desk: true\n", "central_desk: true\ncontact:\n  fg: {name: FG, email: fg@x.example}\n"), "contact.desk", "is required when central_desk is true"},
		{"contact without a way to reach", replace("central_desk: true\n", "central_desk: true\ncontact:\n  desk: {name: Balie}\n"), "contact.desk", "at least one of email, phone and address"},
		{"contact with a bad e-mail", replace("central_desk: true\n", "central_desk: true\ncontact:\n  desk: {name: Balie, email: balie.example}\n"), "contact.desk.email", "e-mail address"},
		{"contact with a bad phone", replace("central_desk: true\n", "central_desk: true\ncontact:\n  desk: {name: Balie, phone: bel-ons}\n"), "contact.desk.phone", "only digits"},
		{"contact on two lines", replace("central_desk: true\n", "central_desk: true\ncontact:\n  desk: {name: \"Balie\\nTwee\", phone: \"030 1\"}\n"), "contact.desk.name", "one line"},
		{"party contact without a name", replace("  - id: school-a\n", "  - id: school-a\n    contact: {email: a@school.example}\n"), "parties[1].contact.name", "is required"},
		{"unknown contact field", replace("central_desk: true\n", "central_desk: true\ncontact:\n  desk: {name: Balie, fax: \"030 1\"}\n"), "contact.desk.fax", "unknown field"},
		{"unknown nested field", replace(`      - public_key: "ec/re`, `      - publik_key: "ec/re`), "parties[1].keys[0].publik_key", "unknown field (the fields here are public_key, revoked, revoked_reason, valid_from, valid_until)"},
		{"http webhook", replace("  - id: school-a\n", "  - id: school-a\n    webhook: http://hooks.school.example/spoor\n"), "parties[1].webhook", "must be an https URL"},
		{"webhook with credentials", replace("  - id: school-a\n", "  - id: school-a\n    webhook: https://u:p@hooks.school.example/\n"), "parties[1].webhook", "must not carry credentials"},
		{"short notification key", replace("central_desk: true\n", "central_desk: true\nnotification_key: AAAA\n"), "notification_key", "32-byte Ed25519"},
		{"wrong type", replace("version: 1\n", "version: one\n"), "version", "must be a whole number"},
		{"list for a set of fields", func(s string) string {
			return regexp.MustCompile(`administrator:\n  name: .*\n  key: .*\n`).ReplaceAllString(s, "administrator: [a]\n")
		}, "administrator", "must be a set of fields (found a list)"},
		{"missing valid_from", replace(gemeenteKey+"        valid_from: 2023-05-25T00:00:00Z\n", gemeenteKey), "parties[0].keys[0].valid_from", "is required"},
		{"time with an offset", replace("effective_from: 2023-05-25T00:00:00Z", "effective_from: 2023-05-25T02:00:00+02:00"), "effective_from", "must be a time in UTC"},
		{"date without time", replace("effective_from: 2023-05-25T00:00:00Z", "effective_from: 2023-05-25"), "effective_from", "must be a time in UTC"},
		{"version 0", replace("version: 1\n", "version: 0\n"), "version", "must be 1 or more"},
		{"previous in version 1", replace(`previous: ""`, `previous: "abc"`), "previous", "must be empty in version 1"},
		{"version 2 without previous", replace("version: 1\n", "version: 2\n"), "previous", "lower-case hex SHA-256 of version 1"},
		{"schema", replace("schema: spoor.covenant/v1", "schema: spoor.covenant/v9"), "schema", "must be spoor.covenant/v1"},
		{"origin with a space", replace("origin: spoor.example/test-regio", `origin: "spoor.example/test regio"`), "origin", "must not contain spaces"},
		{"origin with a plus", replace("origin: spoor.example/test-regio", "origin: spoor.example/test+regio"), "origin", "'+'"},
		{"administrator key garbage", replace(`key: "covenant-admin-1.test+e895fd07+`, `key: "covenant-admin-1.test+e895fd08+`), "administrator.key", "verifier key"},
		{"no subject keys", replace("subject_keys: [k1]", "subject_keys: []"), "subject_keys", "at least one"},
		{"duplicate party id", replace("  - id: school-a\n", "  - id: gemeente-a\n"), "parties[1].id", `repeats "gemeente-a"`},
		{"malformed party id", replace("  - id: gemeente-a\n", "  - id: Gemeente_A\n"), "parties[0].id", "lower-case letters"},
		{"unknown kind", replace("kind: ggd", "kind: provincie"), "parties[3].kind", "must be one of gemeente"},
		{"OIN of 19 digits", replace("  - id: gemeente-a\n", "  - id: gemeente-a\n    oin: \"0000000100123456700\"\n"), "parties[0].oin", "20 digits"},
		{"OIN with a letter", replace("  - id: gemeente-a\n", "  - id: gemeente-a\n    oin: \"0000000100123456700A\"\n"), "parties[0].oin", "20 digits"},
		{"OIN of two parties", edit(replace("  - id: gemeente-a\n", "  - id: gemeente-a\n    oin: \"00000001001234567000\"\n")).Then(
			replace("  - id: school-a\n", "  - id: school-a\n    oin: \"00000001001234567000\"\n")), "parties[1].oin", "already the OIN of gemeente-a"},
		{"short public key", replace("uIP09j6DXvlxMNr2kiHloTY66OGqEarQlhg29ps0dB0=", "AAAA"), "parties[0].keys[0].public_key", "32-byte Ed25519"},
		{"key listed twice", replace("oLctaHBfdPIzf7ufEzk9fxyWk1tXVlAf1bgfC9PWTLo=", "uIP09j6DXvlxMNr2kiHloTY66OGqEarQlhg29ps0dB0="), "parties[3].keys[0].public_key", "already listed at parties[0].keys[0]"},
		{"valid_until before valid_from", replace("valid_until: 2024-01-01T00:00:00Z", "valid_until: 2023-01-01T00:00:00Z"), "parties[2].keys[0].valid_until", "must be after valid_from"},
		{"revoked without reason", replace(gemeenteKey, gemeenteKey+"        revoked: true\n"), "parties[0].keys[0].revoked_reason", "is required when revoked is true"},
		{"no parties", func(s string) string {
			return regexp.MustCompile(`(?s)parties:\n.*?vocabulary:`).ReplaceAllString(s, "parties: []\nvocabulary:")
		}, "parties", "at least one party"},
		{"ground f missing", replace(`    - {id: f, label: "Gerechtvaardigd belang (AVG art. 6 lid 1 sub f)"}`+"\n", ""), "vocabulary.grounds", `must list ground "f"`},
		{"ground g", replace(`    - {id: f, label: "Gerechtvaardigd belang (AVG art. 6 lid 1 sub f)"}`+"\n", `    - {id: f, label: "Gerechtvaardigd belang (AVG art. 6 lid 1 sub f)"}`+"\n"+`    - {id: g, label: "Geen grondslag"}`+"\n"), "vocabulary.grounds[6].id", "a to f"},
		{"duplicate category", replace(`{id: contactgegevens, label: "Contactgegevens"}`, `{id: contactgegevens, label: "Contactgegevens"}`+"\n"+`    - {id: identificatie, label: "Nog eens"}`), "vocabulary.categories[2].id", `repeats "identificatie"`},
		{"special kind unknown", replace("special: art10}", "special: art11}"), "vocabulary.categories[4].special", "art9 or art10"},
		{"rule for an unknown purpose", replace("  purposes:\n    verzuim", "  purposes:\n    signalering: [identificatie]\n    verzuim"), "rules.purposes.signalering", `purpose "signalering" is not in vocabulary.purposes`},
		{"rule with an unknown category", replace("justitiele-gegevens]\n  special", "justitiele-gegevens, bsn]\n  special"), "rules.purposes.mdo-overleg[4]", `"bsn" is not in vocabulary.categories`},
		{"purpose without a rule", replace("    mdo-overleg: [identificatie, onderwijsgegevens, gezondheid, justitiele-gegevens]\n", ""), "rules.purposes", `no entry for purpose "mdo-overleg"`},
		{"unknown exception in rules", replace("art9: [avg-9-2-a, avg-9-2-h]", "art9: [avg-9-2-a, avg-9-2-z]"), "rules.special_category_exceptions.art9[1]", `"avg-9-2-z" is not in vocabulary.exceptions`},
		{"no art10 exceptions", replace("    art10: [uavg-33]\n", ""), "rules.special_category_exceptions", "no entry for art10"},
		{"unknown exempt statute", replace("exempt_statutes: [jeugdwet-7.3.11]", "exempt_statutes: [wet-x]"), "rules.consent.exempt_statutes[0]", "not in vocabulary.statutes"},
		{"unknown discloser kind", replace("required_for_discloser_kinds: [jeugdhulp]", "required_for_discloser_kinds: [huisarts]"), "rules.consent.required_for_discloser_kinds[0]", "must be one of"},
		{"age band missing", replace(", 16-plus: young-person}", "}"), "rules.consent.by_age_band", "age band 16-plus"},
		{"wrong consent giver", replace("under-12: parents", "under-12: grandparents"), "rules.consent.by_age_band.under-12", "must be parents"},
		{"late recording 0", replace("late_recording_hours: 72", "late_recording_hours: 0"), "rules.late_recording_hours", "from 1 to"},
		{"retention of unknown category", replace("categories: {gezondheid: 730,", "categories: {bsn: 10, gezondheid: 730,"), "retention.categories.bsn", `"bsn" is not in vocabulary.categories`},
		{"retention default 0", replace("default_days: 1825", "default_days: 0"), "retention.default_days", "from 1 to 36500"},
		{"retention too long", replace("justitiele-gegevens: 365}", "justitiele-gegevens: 99999999}"), "retention.categories.justitiele-gegevens", "from 1 to 36500"},
		{"key given twice", replace("version: 1\n", "version: 1\nversion: 1\n"), "version", "is given twice (first on line 4)"},
		{"alias", edit(replace("name: \"Convenantbeheer testregio\"", "name: *n")).Then(replace(`name: "Privacyconvenant testregio"`, `name: &n "Privacyconvenant testregio"`)), "administrator.name", "YAML alias"},
		{"merge key", replace("administrator:\n", "administrator:\n  <<: {name: x}\n"), "administrator", "merge key"},
		{"custom tag", replace("central_desk: true", "central_desk: !yes true"), "central_desk", "YAML tag"},
		{"two documents", func(s string) string { return s + "---\nschema: x\n" }, "", "more than one YAML document"},
		{"not YAML", func(string) string { return "parties: [\n" }, "", "not valid YAML"},
		{"empty", func(string) string { return "" }, "", "empty"},
		{"only a comment", func(string) string { return "# nothing\n" }, "", "empty"},
		{"a bare value", func(string) string { return "covenant\n" }, "", "must be a set of fields"},
		{"too large", func(s string) string { return s + "#" + strings.Repeat("x", MaxCovenantSize) + "\n" }, "", "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCovenantYAML([]byte(tc.edit(valid)))
			var es CovenantErrors
			if !errors.As(err, &es) {
				t.Fatalf("want CovenantErrors, got %v", err)
			}
			if len(es) != 1 {
				t.Errorf("want exactly one problem, got %d: %v", len(es), err)
			}
			if es[0].Field != tc.field || !strings.Contains(es[0].Reason, tc.reason) {
				t.Errorf("got %q: %q; want %q: ...%q...", es[0].Field, es[0].Reason, tc.field, tc.reason)
			}
			var one *CovenantError
			if !errors.As(err, &one) {
				t.Error("errors.As does not find a *CovenantError")
			}
		})
	}
}

// Then chains two edits.
type edit func(string) string

func (e edit) Then(f edit) func(string) string { return func(s string) string { return f(e(s)) } }

func TestPartyByOIN(t *testing.T) {
	valid := strings.Replace(string(readTestdata(t, "valid.yaml")), "  - id: school-a\n", "  - id: school-a\n    oin: \"00000001001234567000\"\n", 1)
	c, err := ParseCovenantYAML([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := c.PartyByOIN("00000001001234567000"); !ok || p.ID != "school-a" {
		t.Errorf("PartyByOIN = %q, %v; want school-a", p.ID, ok)
	}
	for _, oin := range []string{"", "00000001001234567001"} {
		if p, ok := c.PartyByOIN(oin); ok {
			t.Errorf("PartyByOIN(%q) = %s; want none (a party without an OIN must not match the empty one)", oin, p.ID)
		}
	}
}

func TestCovenantWebhookAndNotificationKey(t *testing.T) {
	valid := strings.Replace(string(readTestdata(t, "valid.yaml")), "  - id: school-a\n", "  - id: school-a\n    webhook: https://hooks.school.example/spoor\n", 1)
	valid = strings.Replace(valid, "central_desk: true\n", "central_desk: true\nnotification_key: \"uIP09j6DXvlxMNr2kiHloTY66OGqEarQlhg29ps0dB0=\"\n", 1)
	c, err := ParseCovenantYAML([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Party("school-a"); p.Webhook != "https://hooks.school.example/spoor" {
		t.Errorf("webhook %q", p.Webhook)
	}
	if k, err := c.NotificationPublicKey(); err != nil || len(k) != 32 {
		t.Errorf("notification key %x, %v", k, err)
	}
}

func TestParseCovenantAllProblemsAtOnce(t *testing.T) {
	valid := string(readTestdata(t, "valid.yaml"))
	s := strings.Replace(valid, "version: 1\n", "version: 0\n", 1)
	s = strings.Replace(s, "kind: ggd", "kind: provincie", 1)
	s = strings.Replace(s, "default_days: 1825", "default_days: -1", 1)
	s = strings.Replace(s, "        valid_from: 2023-05-25T00:00:00Z\n", "", 1)
	_, err := ParseCovenantYAML([]byte(s))
	var es CovenantErrors
	if !errors.As(err, &es) || len(es) != 4 {
		t.Fatalf("want 4 problems, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"version: must be 1 or more (line 4)", "parties[3].kind", "retention.default_days", "parties[0].keys[0].valid_from: is required (line 19)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func TestAdminKeys(t *testing.T) {
	skey, vkey, err := GenerateAdminKey("regio.test-admin")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := AdminPrivateKey(skey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := AdminPublicKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("the two halves of a generated key do not match")
	}
	secret := strings.SplitN(skey, "+", 5)[4]
	for _, bad := range []string{"", vkey, "PRIVATE+KEY+x+00000000+" + secret, skey[:len(skey)-2]} {
		_, err := AdminPrivateKey(bad)
		if err == nil {
			t.Errorf("AdminPrivateKey accepted a malformed key")
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("error repeats the secret key")
		}
	}
	for _, bad := range []string{"", skey, "x+00000000+AQ==", vkey + "x"} {
		if _, err := AdminPublicKey(bad); err == nil {
			t.Errorf("AdminPublicKey(%q) accepted a malformed key", bad)
		}
	}
}

func TestSignCovenantGolden(t *testing.T) {
	skey1, vkey1 := testAdmin(t, "1")
	v1yaml := readTestdata(t, "valid.yaml")
	env, err := SignCovenant(v1yaml, skey1)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "v1.signed", env)
	sc, err := ParseSignedCovenant(env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sc.Envelope.Payload, v1yaml) || !bytes.Equal(sc.Envelope.Raw, env) {
		t.Error("the envelope does not carry the file verbatim")
	}
	if sc.Envelope.PayloadType != CovenantPayloadType || sc.Envelope.KeyID != KeyID(mustAdminPub(t, vkey1)) {
		t.Errorf("envelope type %q keyid %q", sc.Envelope.PayloadType, sc.Envelope.KeyID)
	}

	// v2.yaml names v1.signed's hash as previous; v1's administrator signs it.
	if want := "previous: " + sc.Hash(); !strings.Contains(string(readTestdata(t, "v2.yaml")), want) {
		t.Fatalf("v2.yaml must contain %q", want)
	}
	env2, err := SignCovenant(readTestdata(t, "v2.yaml"), skey1)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "v2.signed", env2)
}

func mustAdminPub(t testing.TB, vkey string) ed25519.PublicKey {
	t.Helper()
	pub, err := AdminPublicKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestSignCovenantErrors(t *testing.T) {
	skey1, _ := testAdmin(t, "1")
	skey2, _ := testAdmin(t, "2")
	v1yaml := readTestdata(t, "valid.yaml")
	if _, err := SignCovenant(v1yaml, skey2); !errors.Is(err, ErrCovenantSignature) {
		t.Errorf("version 1 signed by a key it does not name: got %v, want ErrCovenantSignature", err)
	}
	if _, err := SignCovenant(bytes.Replace(v1yaml, []byte("version: 1"), []byte("version: 0"), 1), skey1); err == nil {
		t.Error("an invalid covenant was signed")
	}
	if _, err := SignCovenant(v1yaml, "not a key"); err == nil {
		t.Error("signed with a malformed key")
	}
}

func TestParseSignedCovenantErrors(t *testing.T) {
	skey2, _ := testAdmin(t, "2")
	v1 := readTestdata(t, "v1.signed")
	v1yaml := readTestdata(t, "valid.yaml")
	priv2, _ := AdminPrivateKey(skey2)
	priv1, err := AdminPrivateKey(mustSkey(t, "1"))
	if err != nil {
		t.Fatal(err)
	}

	flipped := bytes.Clone(v1)
	i := bytes.LastIndex(flipped, []byte(`"sig":"`)) + len(`"sig":"`) + 3
	flipped[i] ^= 'A' ^ 'B'
	if flipped[i] == v1[i] {
		t.Fatal("no change made")
	}
	for _, tc := range []struct {
		name    string
		b       []byte
		wantSig bool
	}{
		{"bad signature", flipped, true},
		{"version 1 signed by another key", SignEnvelope(CovenantPayloadType, v1yaml, priv2), true},
		{"disclosure payload type", SignEnvelope(PayloadType, v1yaml, priv1), false},
		{"not canonical", append([]byte(" "), v1...), false},
		{"not a covenant", SignEnvelope(CovenantPayloadType, []byte("hello: world\n"), priv1), false},
		{"not JSON", []byte("covenant"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSignedCovenant(tc.b)
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrCovenantSignature) != tc.wantSig {
				t.Errorf("errors.Is(ErrCovenantSignature) = %v, want %v: %v", !tc.wantSig, tc.wantSig, err)
			}
			if tc.wantSig && !strings.Contains(err.Error(), "covenant-admin-1.test") {
				t.Errorf("error does not name the administrator key: %v", err)
			}
		})
	}
	// A later version parses on its own: who signed it is for the chain.
	if _, err := ParseSignedCovenant(readTestdata(t, "v2.signed")); err != nil {
		t.Errorf("v2.signed: %v", err)
	}
}

func mustSkey(t testing.TB, n string) string {
	skey, _ := testAdmin(t, n)
	return skey
}

// chainFixture returns v1 (logged), the text of v2, and the admin keys.
func chainFixture(t *testing.T) (v1 *SignedCovenant, v2yaml string, skey1, vkey1, skey2, vkey2 string) {
	t.Helper()
	skey1, vkey1 = testAdmin(t, "1")
	skey2, vkey2 = testAdmin(t, "2")
	v1, err := ParseSignedCovenant(readTestdata(t, "v1.signed"))
	if err != nil {
		t.Fatal(err)
	}
	return v1, string(readTestdata(t, "v2.yaml")), skey1, vkey1, skey2, vkey2
}

func TestChain(t *testing.T) {
	v1, v2yaml, skey1, vkey1, skey2, vkey2 := chainFixture(t)

	if _, err := NewChain(v1, vkey2); !errors.Is(err, ErrCovenantSignature) {
		t.Errorf("NewChain with another pinned key: got %v, want ErrCovenantSignature", err)
	}
	if _, err := NewChain(v1, "garbage"); err == nil {
		t.Error("NewChain accepted a malformed pinned key")
	}
	v2, err := ParseSignedCovenant(readTestdata(t, "v2.signed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewChain(v2, ""); !errors.Is(err, ErrCovenantChain) {
		t.Errorf("NewChain from version 2: got %v, want ErrCovenantChain", err)
	}

	ch, err := NewChain(v1, vkey1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Append(v2); err != nil {
		t.Fatalf("Append(v2): %v", err)
	}
	if ch.Len() != 2 || ch.Latest().Covenant.Version != 2 || ch.Version(1).Covenant.Version != 1 ||
		ch.Version(3) != nil || ch.Version(0) != nil || !bytes.Equal(ch.Latest().Envelope.Raw, v2.Envelope.Raw) {
		t.Fatalf("chain state wrong after two versions")
	}

	// v2 hands the administrator role to key 2: v3 must be signed by it.
	v3yaml := strings.NewReplacer("version: 2\n", "version: 3\n", "previous: "+v1.Hash(), "previous: "+v2.Hash()).Replace(v2yaml)
	if got := mustSign(t, []byte(v3yaml), skey1); !errors.Is(ch.Append(got), ErrCovenantSignature) {
		t.Error("v3 signed by the old administrator key was accepted after the rotation")
	}
	if err := ch.Append(mustSign(t, []byte(v3yaml), skey2)); err != nil {
		t.Errorf("v3 signed by the new administrator key: %v", err)
	}
	if ch.Len() != 3 {
		t.Errorf("Len = %d, want 3", ch.Len())
	}
}

func TestChainAppendRefusals(t *testing.T) {
	v1, v2yaml, skey1, _, skey2, _ := chainFixture(t)
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		skey    string
		wantErr error
	}{
		{"signed by the wrong key", nil, skey2, ErrCovenantSignature},
		{"wrong previous", func(s string) string {
			return strings.Replace(s, "previous: "+v1.Hash(), "previous: "+strings.Repeat("ab", 32), 1)
		}, skey1, ErrCovenantChain},
		{"changed origin", func(s string) string {
			return strings.Replace(s, "origin: spoor.example/test-regio", "origin: spoor.example/elders", 1)
		}, skey1, ErrCovenantChain},
		{"version skip", func(s string) string { return strings.Replace(s, "version: 2\n", "version: 3\n", 1) }, skey1, ErrCovenantChain},
		{"effective earlier", func(s string) string {
			return strings.Replace(s, "effective_from: 2024-09-01T00:00:00Z", "effective_from: 2023-01-01T00:00:00Z", 1)
		}, skey1, ErrCovenantChain},
		{"key moved to another party", func(s string) string {
			// ggd-a's key listed under wijkteam-a instead.
			s = strings.Replace(s, "    kind: ggd\n    keys:\n      - public_key: \"oLctaHBfdPIzf7ufEzk9fxyWk1tXVlAf1bgfC9PWTLo=\"\n        valid_from: 2023-05-25T00:00:00Z\n", "    kind: ggd\n    keys: []\n", 1)
			return strings.Replace(s, "    kind: wijkteam\n    keys: []\n", "    kind: wijkteam\n    keys:\n      - public_key: \"oLctaHBfdPIzf7ufEzk9fxyWk1tXVlAf1bgfC9PWTLo=\"\n        valid_from: 2023-05-25T00:00:00Z\n", 1)
		}, skey1, ErrCovenantChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := NewChain(v1, "")
			if err != nil {
				t.Fatal(err)
			}
			yml := v2yaml
			if tc.edit != nil {
				yml = tc.edit(yml)
				if yml == v2yaml {
					t.Fatal("test case is stale: the edit changed nothing")
				}
			}
			env, err := SignCovenant([]byte(yml), tc.skey)
			if tc.wantErr == nil {
				// The file itself is refused before it can reach the chain.
				if err == nil {
					t.Fatal("SignCovenant accepted a broken file")
				}
				return
			}
			if err != nil {
				t.Fatalf("SignCovenant: %v", err)
			}
			sc, err := ParseSignedCovenant(env)
			if err != nil {
				t.Fatal(err)
			}
			err = ch.Append(sc)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Append: got %v, want %v", err, tc.wantErr)
			}
			if ch.Len() != 1 {
				t.Error("a refused version was appended")
			}
		})
	}

	// Reinstating a revoked key: v3 un-revokes school-a's key.
	ch, err := NewChain(v1, "")
	if err != nil {
		t.Fatal(err)
	}
	v2 := mustSign(t, []byte(v2yaml), skey1)
	if err := ch.Append(v2); err != nil {
		t.Fatal(err)
	}
	v3yaml := strings.NewReplacer("version: 2\n", "version: 3\n", "previous: "+v1.Hash(), "previous: "+v2.Hash(),
		"        revoked: true\n        revoked_reason: \"Laptop gestolen (testgeval)\"\n", "").Replace(v2yaml)
	if err := ch.Append(mustSign(t, []byte(v3yaml), skey2)); !errors.Is(err, ErrCovenantChain) {
		t.Errorf("reinstating a revoked key: got %v, want ErrCovenantChain", err)
	}
	if err := ch.Append(nil); err == nil {
		t.Error("Append(nil) accepted")
	}
	if err := ch.Append(&SignedCovenant{}); err == nil {
		t.Error("Append of an empty SignedCovenant accepted")
	}
}

// TestChainUsesSignedBytes makes sure a chain trusts the signed payload,
// not a Covenant that a caller put beside it.
func TestChainUsesSignedBytes(t *testing.T) {
	v1, _, _, _, _, _ := chainFixture(t)
	forged := *v1.Covenant
	forged.Parties = append([]Party{}, forged.Parties...)
	forged.Parties = append(forged.Parties, Party{ID: "mallory", Name: "Mallory", Kind: KindWelzijn})
	ch, err := NewChain(&SignedCovenant{Covenant: &forged, Envelope: v1.Envelope}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.Latest().Covenant.Party("mallory"); ok {
		t.Error("the chain holds a party that is not in the signed file")
	}
}

func TestPartyKey(t *testing.T) {
	v1, _, _, _, _, _ := chainFixture(t)
	c := v1.Covenant
	kid := func(name string) string { return KeyID(testPartyPriv(name).Public().(ed25519.PublicKey)) }
	day := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		party, key string
		at         string
		want       error
	}{
		{"gemeente-a", "gemeente-a", "2025-03-01T10:00:00Z", nil},
		{"gemeente-a", "gemeente-a", "2023-05-24T23:59:59Z", ErrKeyNotInForce},
		{"elders", "gemeente-a", "2025-03-01T10:00:00Z", ErrUnknownParty},
		{"gemeente-a", "school-a", "2025-03-01T10:00:00Z", ErrKeyNotInForce},
		{"jeugdhulp-a", "jeugdhulp-a-old", "2023-12-31T23:59:59Z", nil},
		{"jeugdhulp-a", "jeugdhulp-a-old", "2024-01-01T00:00:00Z", ErrKeyNotInForce},
		{"jeugdhulp-a", "jeugdhulp-a", "2024-01-01T00:00:00Z", nil},
		{"jeugdhulp-a", "jeugdhulp-a", "2023-12-31T23:59:59Z", ErrKeyNotInForce},
	} {
		pub, err := c.PartyKey(tc.party, kid(tc.key), day(tc.at))
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("PartyKey(%s, key of %s, %s): %v", tc.party, tc.key, tc.at, err)
		case tc.want == nil && !pub.Equal(testPartyPriv(tc.key).Public()):
			t.Errorf("PartyKey(%s, key of %s, %s) returned another key", tc.party, tc.key, tc.at)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("PartyKey(%s, key of %s, %s): got %v, want %v", tc.party, tc.key, tc.at, err, tc.want)
		}
	}
	if _, err := c.PartyKey("gemeente-a", "not a keyid\n", time.Now()); !errors.Is(err, ErrKeyNotInForce) || strings.Contains(err.Error(), "not a keyid") {
		t.Errorf("malformed keyid: %v", err)
	}
}

func TestRevocationInLaterVersion(t *testing.T) {
	v1, _, _, _, _, _ := chainFixture(t)
	ch, err := NewChain(v1, "")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ParseSignedCovenant(readTestdata(t, "v2.signed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Append(v2); err != nil {
		t.Fatal(err)
	}
	kid := KeyID(testPartyPriv("school-a").Public().(ed25519.PublicKey))
	// Back-dating into the key's window does not help under version 2.
	at := time.Date(2023, 6, 1, 9, 0, 0, 0, time.UTC)
	if _, err := ch.Version(1).Covenant.PartyKey("school-a", kid, at); err != nil {
		t.Errorf("version 1: %v", err)
	}
	if _, err := ch.Version(2).Covenant.PartyKey("school-a", kid, at); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("version 2: got %v, want ErrKeyRevoked", err)
	}

	// The same through Open, as the ledger does it.
	d := testDisclosure(t)
	d.Discloser = "school-a"
	d.Recipients = []string{"gemeente-a"}
	d.OccurredAt = at
	k := &PartyKey{Party: "school-a", Private: testPartyPriv("school-a"), SaltSecret: bytes.Repeat([]byte{7}, 32)}
	Seal(d, k)
	env, err := Sign(d, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(env, "spoor.example/test-regio", ch.Version(1).Covenant); err != nil {
		t.Errorf("Open against version 1: %v", err)
	}
	_, _, err = Open(env, "spoor.example/test-regio", ch.Latest().Covenant)
	var re *RejectError
	if !errors.As(err, &re) || re.Reason != ReasonKeyRevoked {
		t.Errorf("Open against version 2: got %v, want reason %s", err, ReasonKeyRevoked)
	}
}

// testDisclosure is a disclosure that breaks no rule of valid.yaml: a
// leerplicht officer of gemeente-a tells school-a about absence.
func testDisclosure(t testing.TB) *Disclosure {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	subj, err := SubjectFor(SubjectKey{ID: "k1", Secret: bytes.Repeat([]byte{1}, SubjectKeySize)}, IDTypeBSN, "999990019")
	if err != nil {
		t.Fatal(err)
	}
	return &Disclosure{
		Schema: SchemaV1, Origin: "spoor.example/test-regio", ID: id.String(),
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		ProcessingActivity: "leerplicht-verzuim", OccurredAt: time.Date(2025, 3, 3, 9, 30, 0, 0, time.UTC),
		Discloser: "gemeente-a", Recipients: []string{"school-a"}, Subject: subj, SubjectAgeBand: Age12To15,
		Categories: []string{"identificatie", "onderwijsgegevens"}, Purpose: "verzuim-en-leerplicht",
		LegalBasis: LegalBasis{Ground: "c", Statute: "leerplichtwet-21"}, Justification: "Melding verzuim opgevolgd.",
		Channel: "email", Actor: Actor{Role: "leerplichtambtenaar", StaffID: "lpa-17"},
		Salt: base64.StdEncoding.EncodeToString(make([]byte, SaltSize)),
	}
}

func TestCheck(t *testing.T) {
	c := mustParse(t, readTestdata(t, "valid.yaml"))
	base := testDisclosure(t)
	if err := base.Validate(); err != nil {
		t.Fatalf("the test disclosure is invalid: %v", err)
	}
	if fs := c.Check(base); len(fs) != 0 {
		t.Fatalf("the base disclosure has findings: %+v", fs)
	}
	type want struct{ rule, field, msg string }
	for _, tc := range []struct {
		name string
		edit func(d *Disclosure)
		want []want
	}{
		{"purpose unknown", func(d *Disclosure) { d.Purpose = "signalering" },
			[]want{{RulePurposeUnknown, "purpose", `purpose "signalering" is not in the covenant's vocabulary`}}},
		{"category unknown", func(d *Disclosure) { d.Categories = append(d.Categories, "bsn") },
			[]want{{RuleCategoryUnknown, "categories[2]", `category "bsn" is not in the covenant's vocabulary`}}},
		{"category not needed", func(d *Disclosure) {
			d.Purpose, d.Categories, d.LegalBasis = "mdo-overleg", []string{"identificatie", "contactgegevens"}, LegalBasis{Ground: "e"}
		}, []want{{RuleCategoryNotNeeded, "categories[1]", "category contactgegevens is not needed for purpose mdo-overleg"}}},
		{"special category without exception", func(d *Disclosure) {
			d.Purpose, d.Categories, d.LegalBasis = "mdo-overleg", []string{"identificatie", "gezondheid"}, LegalBasis{Ground: "e"}
		}, []want{{RuleSpecialWithoutException, "legal_basis.exception", "category gezondheid is special (art9) and needs an exception (one of avg-9-2-a, avg-9-2-h), but none is given"}}},
		{"special category with an exception for another kind", func(d *Disclosure) {
			d.Purpose, d.Categories, d.LegalBasis = "mdo-overleg", []string{"justitiele-gegevens"}, LegalBasis{Ground: "e", Exception: "avg-9-2-h"}
		}, []want{{RuleSpecialWithoutException, "legal_basis.exception", `category justitiele-gegevens is special (art10); exception "avg-9-2-h" is not one that allows it (one of uavg-33)`}}},
		{"special category with a fitting exception", func(d *Disclosure) {
			d.Purpose, d.Categories, d.LegalBasis = "mdo-overleg", []string{"gezondheid"}, LegalBasis{Ground: "e", Exception: "avg-9-2-h"}
		}, nil},
		{"consent missing for ground a", func(d *Disclosure) { d.LegalBasis = LegalBasis{Ground: "a"} },
			[]want{{RuleConsentMissing, "consent", "consent is required (ground a) but the disclosure records none"}}},
		{"consent missing for exception 9(2)(a)", func(d *Disclosure) {
			d.Purpose, d.Categories, d.LegalBasis = "mdo-overleg", []string{"gezondheid"}, LegalBasis{Ground: "e", Exception: "avg-9-2-a"}
		}, []want{{RuleConsentMissing, "consent", "consent is required (exception avg-9-2-a)"}}},
		{"consent missing for youth care", func(d *Disclosure) {
			d.Discloser, d.Recipients, d.LegalBasis = "jeugdhulp-a", []string{"gemeente-a"}, LegalBasis{Ground: "e"}
		}, []want{{RuleConsentMissing, "consent", "the discloser is a jeugdhulp and no exempting statute is cited"}}},
		{"youth care under an exempting statute", func(d *Disclosure) {
			d.Discloser, d.Recipients, d.LegalBasis = "jeugdhulp-a", []string{"gemeente-a"}, LegalBasis{Ground: "e", Statute: "jeugdwet-7.3.11"}
		}, nil},
		{"youth care with consent", func(d *Disclosure) {
			d.Discloser, d.Recipients, d.LegalBasis = "jeugdhulp-a", []string{"gemeente-a"}, LegalBasis{Ground: "a"}
			d.Consent = &Consent{Reference: "dossier 12", GivenBy: ConsentChildAndParents}
		}, nil},
		{"consent by the wrong person", func(d *Disclosure) {
			d.SubjectAgeBand = Age16Plus
			d.LegalBasis = LegalBasis{Ground: "a"}
			d.Consent = &Consent{Reference: "dossier 12", GivenBy: ConsentParents}
		}, []want{{RuleConsentWrongGiver, "consent.given_by", `for age band 16-plus consent is given by young-person, not by "parents"`}}},
		{"recipient outside the covenant", func(d *Disclosure) { d.Recipients = []string{"school-a", "politie-x"} },
			[]want{{RuleRecipientOutsideCovenant, "recipients[1]", `recipient "politie-x" is not a party of covenant version 1`}}},
		{"ground unknown", func(d *Disclosure) { d.LegalBasis.Ground = "g" },
			[]want{{RuleGroundUnknown, "legal_basis.ground", `ground "g" is not in the covenant's vocabulary`}}},
		{"exception unknown", func(d *Disclosure) { d.LegalBasis.Exception = "avg-9-2-j" },
			[]want{{RuleExceptionUnknown, "legal_basis.exception", `exception "avg-9-2-j" is not in the covenant's vocabulary`}}},
		{"statute unknown", func(d *Disclosure) { d.LegalBasis.Statute = "wpo-42" },
			[]want{{RuleStatuteUnknown, "legal_basis.statute", `statute "wpo-42" is not in the covenant's vocabulary`}}},
		{"role unknown", func(d *Disclosure) { d.Actor.Role = "conciërge Jansen" },
			[]want{{RuleRoleUnknown, "actor.role", "the actor's role is not in the covenant's vocabulary of roles"}}},
		{"ground f by a municipality", func(d *Disclosure) { d.LegalBasis = LegalBasis{Ground: "f"} },
			[]want{{RulePublicBodyGroundF, "legal_basis.ground", "ground f (legitimate interest) is not available to a gemeente acting in its public task"}}},
		{"ground f by a school board", func(d *Disclosure) {
			d.Discloser, d.Recipients, d.LegalBasis = "school-a", []string{"gemeente-a"}, LegalBasis{Ground: "f"}
		}, nil},
		{"several at once, in field order", func(d *Disclosure) {
			d.Recipients = []string{"elders"}
			d.Categories = []string{"gezondheid"}
			d.Actor.Role = "x"
		}, []want{
			{RuleRecipientOutsideCovenant, "recipients[0]", ""},
			{RuleCategoryNotNeeded, "categories[0]", ""},
			{RuleSpecialWithoutException, "legal_basis.exception", ""},
			{RuleRoleUnknown, "actor.role", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDisclosure(t)
			tc.edit(d)
			fs := c.Check(d)
			if len(fs) != len(tc.want) {
				t.Fatalf("got %d findings %+v, want %d", len(fs), fs, len(tc.want))
			}
			for i, w := range tc.want {
				f := fs[i]
				if f.Rule != w.rule || f.Field != w.field || !strings.Contains(f.Message, w.msg) {
					t.Errorf("finding %d = %+v, want rule %s field %s message ~%q", i, f, w.rule, w.field, w.msg)
				}
				if strings.Contains(f.Message, d.Subject.Pseudonym) || strings.Contains(f.Message, d.Actor.StaffID) || strings.Contains(f.Message, "Jansen") {
					t.Errorf("finding message carries personal data: %q", f.Message)
				}
			}
		})
	}
	if fs := c.Check(nil); fs != nil {
		t.Errorf("Check(nil) = %v", fs)
	}
}

func TestCheckRecording(t *testing.T) {
	c := mustParse(t, readTestdata(t, "valid.yaml"))
	d := testDisclosure(t)
	for _, tc := range []struct {
		after time.Duration
		rule  string
	}{
		{time.Second, ""},
		{72 * time.Hour, ""},
		{100 * time.Hour, RuleRecordedLate},
		{-time.Minute, ""},
		{-2 * time.Hour, RuleOccurredAfterRecording},
	} {
		fs := c.CheckRecording(d, d.OccurredAt.Add(tc.after))
		switch {
		case tc.rule == "" && len(fs) != 0:
			t.Errorf("recorded %s after: unexpected %+v", tc.after, fs)
		case tc.rule != "" && (len(fs) != 1 || fs[0].Rule != tc.rule || fs[0].Field != "occurred_at"):
			t.Errorf("recorded %s after: got %+v, want %s", tc.after, fs, tc.rule)
		}
	}
}

func TestFindingLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range FindingRules() {
		if l := FindingLabelNL(r); l == r || l == "" {
			t.Errorf("rule %s has no Dutch label", r)
		}
		if seen[r] {
			t.Errorf("rule %s listed twice", r)
		}
		seen[r] = true
	}
	if len(seen) != len(findingLabelsNL) {
		t.Errorf("FindingRules lists %d rules, there are %d labels", len(seen), len(findingLabelsNL))
	}
	if FindingLabelNL("no-such-rule") != "no-such-rule" {
		t.Error("an unknown rule should label as itself")
	}
	b, err := json.Marshal(Finding{Rule: RuleConsentMissing, Field: "consent", Message: "m"})
	if err != nil || string(b) != `{"rule":"consent-missing","field":"consent","message":"m"}` {
		t.Errorf("Finding JSON = %s, %v", b, err)
	}
}

// TestAnswerRetentionDays: retention.answers_days, when set, is how long
// an inzage answer's body is kept; absent, the longest disclosure
// retention; outside 1 to maxDays it is refused.
func TestAnswerRetentionDays(t *testing.T) {
	valid := string(readTestdata(t, "valid.yaml"))
	c := mustParse(t, []byte(valid))
	longest := c.Retention.DefaultDays
	for _, d := range c.Retention.Categories {
		longest = max(longest, d)
	}
	if got := c.AnswerRetentionDays(); got != longest || c.Retention.AnswersDays != 0 {
		t.Fatalf("without answers_days: %d, want the longest disclosure retention %d", got, longest)
	}
	const marker = "  erasure_notice_days:"
	if !strings.Contains(valid, marker) {
		t.Fatalf("test case is stale: %q is not in valid.yaml", marker)
	}
	with := func(v string) string { return strings.Replace(valid, marker, "  answers_days: "+v+"\n"+marker, 1) }
	c = mustParse(t, []byte(with("400")))
	if got := c.AnswerRetentionDays(); got != 400 {
		t.Fatalf("answers_days 400: %d", got)
	}
	for _, bad := range []string{"-1", "36501"} {
		_, err := ParseCovenantYAML([]byte(with(bad)))
		if err == nil || !strings.Contains(err.Error(), "retention.answers_days") {
			t.Errorf("answers_days %s: %v, want it refused naming the field", bad, err)
		}
	}
}
