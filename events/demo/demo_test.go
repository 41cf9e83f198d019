package demo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
)

func TestNames(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "amersfoort,waterweg" {
		t.Errorf("Names() = %s", got)
	}
	if _, err := Generate(t.TempDir(), "utrecht"); !errors.Is(err, ErrUnknownDemo) {
		t.Errorf("Generate(utrecht): got %v, want ErrUnknownDemo", err)
	}
	if _, err := Ensure(t.TempDir(), "utrecht"); !errors.Is(err, ErrUnknownDemo) {
		t.Errorf("Ensure(utrecht): got %v, want ErrUnknownDemo", err)
	}
}

func TestGenerateAndLoad(t *testing.T) {
	for _, tc := range []struct {
		name, origin string
		parties      int
		some         []string
		centralDesk  bool
	}{
		{"amersfoort", "spoor.example/regio-amersfoort", 17,
			[]string{"gemeente-amersfoort", "gemeente-bunschoten", "swv-de-eem", "swv-berseba", "swv-eemland", "refswv-vo",
				"bbs", "wijkteams-amersfoort", "lariks", "de-kleine-schans", "ggd-regio-utrecht"}, true},
		{"waterweg", "spoor.example/waterweg", 11,
			[]string{"gemeente-vlaardingen", "gemeente-maassluis", "gemeente-schiedam"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo-keys")
			m, err := Generate(dir, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			c := m.Signed.Covenant
			if m.Name != tc.name || m.Dir != dir || c.Origin != tc.origin || c.Version != 1 || c.CentralDesk != tc.centralDesk {
				t.Errorf("material: name %q dir %q origin %q version %d central_desk %v", m.Name, m.Dir, c.Origin, c.Version, c.CentralDesk)
			}
			if len(c.Parties) != tc.parties || len(m.Parties) != tc.parties {
				t.Errorf("%d parties in the covenant, %d keys; want %d", len(c.Parties), len(m.Parties), tc.parties)
			}
			for _, id := range tc.some {
				if _, ok := c.Party(id); !ok {
					t.Errorf("party %s missing", id)
				}
			}
			if m.SubjectKey.ID != SubjectKeyID || len(m.SubjectKey.Secret) != events.SubjectKeySize {
				t.Errorf("pseudonym key %q of %d bytes", m.SubjectKey.ID, len(m.SubjectKey.Secret))
			}
			// The covenant is valid on its own and starts a chain pinned to admin.pub.
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
			if _, err := events.NewChain(m.Signed, m.AdminVkey); err != nil {
				t.Errorf("NewChain: %v", err)
			}
			checkFiles(t, dir, c)

			loaded, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if loaded.Name != m.Name || loaded.AdminSkey != m.AdminSkey || loaded.AdminVkey != m.AdminVkey ||
				!bytes.Equal(loaded.Signed.Envelope.Raw, m.Signed.Envelope.Raw) ||
				!bytes.Equal(loaded.SubjectKey.Secret, m.SubjectKey.Secret) || len(loaded.Parties) != len(m.Parties) {
				t.Error("Load does not give back what Generate made")
			}
			for id, k := range m.Parties {
				if !loaded.Parties[id].Private.Equal(k.Private) || !bytes.Equal(loaded.Parties[id].SaltSecret, k.SaltSecret) {
					t.Errorf("key of %s differs after Load", id)
				}
			}

			// Generate never overwrites; Ensure loads.
			if _, err := Generate(dir, tc.name); !errors.Is(err, fs.ErrExist) {
				t.Errorf("Generate on a full directory: got %v, want fs.ErrExist", err)
			}
			again, err := Ensure(dir, tc.name)
			if err != nil || again.AdminVkey != m.AdminVkey {
				t.Errorf("Ensure did not load the existing keys: %v", err)
			}
			other := "waterweg"
			if tc.name == other {
				other = "amersfoort"
			}
			if _, err := Ensure(dir, other); err == nil {
				t.Errorf("Ensure(%s) loaded the %s demo", other, tc.name)
			}
		})
	}
}

// checkFiles checks modes and the README of a generated directory, and that
// nothing was left beside it.
func checkFiles(t *testing.T, dir string, c *events.Covenant) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", st.Mode().Perm())
	}
	want := []string{AdminKeyFile, AdminPubFile, SubjectKeyFile, CovenantFile, SignedFile, ReadmeFile}
	for _, p := range c.Parties {
		want = append(want, PartyKeyFile(p.ID))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("%d files, want %d", len(entries), len(want))
	}
	for _, name := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	readme, err := os.ReadFile(filepath.Join(dir, ReadmeFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "DEMO KEYS - NEVER USE THEM FOR REAL DATA") {
		t.Errorf("README does not warn:\n%s", readme)
	}
	siblings, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(siblings) != 1 {
		t.Errorf("something was left beside %s: %v", dir, siblings)
	}
}

func TestGenerateIntoExistingDirectory(t *testing.T) {
	empty := t.TempDir()
	if _, err := Generate(empty, "waterweg"); err != nil {
		t.Errorf("Generate into an empty directory: %v", err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(full, "waterweg"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Generate into a directory with other files: got %v, want fs.ErrExist", err)
	}
	if _, err := Ensure(full, "waterweg"); err == nil {
		t.Error("Ensure generated into a directory with other files")
	}
	if b, err := os.ReadFile(filepath.Join(full, "notes.txt")); err != nil || string(b) != "mine" {
		t.Error("a file of the user was touched")
	}
}

func TestEnsureGenerates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	m, err := Ensure(dir, "amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	if m.Dir != dir {
		t.Errorf("Dir = %q", m.Dir)
	}
}

func TestLoadRefusesTampering(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if _, err := Generate(src, "amersfoort"); err != nil {
		t.Fatal(err)
	}
	otherDir := filepath.Join(t.TempDir(), "other")
	if _, err := Generate(otherDir, "amersfoort"); err != nil {
		t.Fatal(err)
	}
	copyDir := func(t *testing.T) string {
		dst := filepath.Join(t.TempDir(), "copy")
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	swapFrom := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(otherDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		want   string
	}{
		{"edited covenant.yaml", func(t *testing.T, dir string) {
			p := filepath.Join(dir, CovenantFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("late_recording_hours: 72"), []byte("late_recording_hours: 7"), 1), 0o600)
		}, "differs from the covenant signed"},
		{"another admin.pub", swapFrom(AdminPubFile), "does not match admin.pub"},
		{"another admin.key", swapFrom(AdminKeyFile), "not one key pair"},
		{"another party key", swapFrom(PartyKeyFile("lariks")), "lariks is not listed with exactly its key"},
		{"a party key missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, PartyKeyFile("bbs"))) }, "bbs.key"},
		{"a broken signed file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, SignedFile), []byte("{}"), 0o600)
		}, "covenant.signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t)
			tc.change(t, dir)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestDemoDisclosures opens realistic disclosures against each demo
// covenant, as the ledger does, and expects no findings: the vocabulary and
// rules of the templates fit everyday practice.
func TestDemoDisclosures(t *testing.T) {
	type story struct {
		discloser, recipient, purpose, role, statute, exception, ground string
		categories                                                      []string
		consent                                                         events.ConsentGiver
	}
	stories := map[string][]story{
		"amersfoort": {
			{"gemeente-amersfoort", "schoolbestuur-eemland-vo", "verzuim-en-leerplicht", "leerplichtambtenaar", "leerplichtwet-21", "", "c",
				[]string{"identificatie", "bsn", "onderwijsgegevens"}, ""},
			{"schoolbestuur-eemland-po", "swv-de-eem", "toelaatbaarheidsverklaring", "intern-begeleider", "wpo-18a", "uavg-30", "e",
				[]string{"identificatie", "onderwijsgegevens", "ondersteuningsbehoefte", "gezondheid"}, ""},
			{"de-kleine-schans", "wijkteams-amersfoort", "mdo-overleg", "jeugdhulpverlener", "", "avg-9-2-a", "a",
				[]string{"identificatie", "gezondheid", "jeugdhulp-inzet"}, events.ConsentChildAndParents},
			{"ggd-regio-utrecht", "gemeente-soest", "thuiszittersaanpak", "jeugdarts", "", "avg-9-2-h", "e",
				[]string{"identificatie", "onderwijsgegevens", "gezondheid"}, ""},
		},
		"waterweg": {
			{"gemeente-schiedam", "schoolbestuur-waterweg-po", "verzuim-en-leerplicht", "leerplichtambtenaar", "leerplichtwet-21", "", "c",
				[]string{"identificatie", "contactgegevens", "onderwijsgegevens"}, ""},
			{"jeugdhulp-waterweg", "gemeente-vlaardingen", "toewijzing-jeugdhulp", "jeugdhulpverlener", "jeugdwet-7.3.11", "avg-9-2-h", "e",
				[]string{"identificatie", "bsn", "gezondheid", "jeugdhulp-inzet"}, ""},
		},
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m, err := Generate(filepath.Join(t.TempDir(), "keys"), name)
			if err != nil {
				t.Fatal(err)
			}
			c := m.Signed.Covenant
			subject, err := events.SubjectFor(m.SubjectKey, events.IDTypeBSN, "999990019")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range stories[name] {
				id, err := uuid.NewV7()
				if err != nil {
					t.Fatal(err)
				}
				d := &events.Disclosure{
					Schema: events.SchemaV1, Origin: c.Origin, ID: id.String(),
					TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
					ProcessingActivity: "demo-" + s.purpose, OccurredAt: time.Date(2025, 2, 10, 14, 0, 0, 0, time.UTC),
					Recipients: []string{s.recipient}, Subject: subject, SubjectAgeBand: events.Age12To15,
					Categories: s.categories, Purpose: s.purpose,
					LegalBasis:    events.LegalBasis{Ground: s.ground, Exception: s.exception, Statute: s.statute},
					Justification: "Demo.", Channel: "mdo", Actor: events.Actor{Role: s.role, StaffID: "demo-1"},
				}
				if s.consent != "" {
					d.Consent = &events.Consent{Reference: "demo", GivenBy: s.consent}
				}
				k := m.Parties[s.discloser]
				events.Seal(d, k)
				env, err := events.Sign(d, k)
				if err != nil {
					t.Fatalf("%s: %v", s.purpose, err)
				}
				opened, _, err := events.Open(env, c.Origin, c)
				if err != nil {
					t.Fatalf("%s by %s: %v", s.purpose, s.discloser, err)
				}
				if fs := c.Check(opened); len(fs) != 0 {
					t.Errorf("%s by %s: findings %+v", s.purpose, s.discloser, fs)
				}
			}
			// Every label a report needs is there.
			for _, p := range c.Vocabulary.Purposes {
				if c.PurposeLabel(p.ID) == p.ID {
					t.Errorf("purpose %s has no label", p.ID)
				}
			}
		})
	}
}

// TestDeskUsers: every demo covenant has two desk users per scope, and each
// party desk user's party is a party of that covenant (a desk user of no
// party on a covenant without a central desk would answer for nobody).
func TestDeskUsers(t *testing.T) {
	for _, name := range Names() {
		m, err := Generate(t.TempDir(), name)
		if err != nil {
			t.Fatal(err)
		}
		users := DeskUsers(name)
		perScope := map[string]int{}
		for _, u := range users {
			perScope[u.Party]++
			if u.Party == "" && !m.Signed.Covenant.CentralDesk {
				t.Errorf("%s: desk user %s has no party, and the covenant names no central desk", name, u.Name)
			}
			if _, ok := m.Signed.Covenant.Party(u.Party); u.Party != "" && !ok {
				t.Errorf("%s: desk user %s answers for %q, which is not a party of the covenant", name, u.Name, u.Party)
			}
		}
		if len(users) == 0 {
			t.Errorf("%s: no demo desk users", name)
		}
		for party, n := range perScope {
			if n < 2 {
				t.Errorf("%s: scope %q has %d desk user(s); a release needs two", name, party, n)
			}
		}
	}
}

// TestCovenantWithPolicy: version 2 made from a demo's version 1 carries
// the witness policy, is signed by the demo administrator and follows
// version 1 in a covenant chain anchored at the administrator's key, as the
// ledger requires before it adopts it.
func TestCovenantWithPolicy(t *testing.T) {
	m, err := Generate(filepath.Join(t.TempDir(), "demo-keys"), "amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	key := func(name string) string {
		_, vkey, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		return vkey
	}
	policy := "log " + key(m.Signed.Covenant.Origin) + "\n" +
		"witness fg-a " + key("fg-a.example") + " http://127.0.0.1:1\n" +
		"witness fg-b " + key("fg-b.example") + " http://127.0.0.1:2\n" +
		"group fgs 2 fg-a fg-b\nquorum fgs\n"
	v2, err := m.CovenantWithPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Covenant.Version != 2 || v2.Covenant.Origin != m.Signed.Covenant.Origin {
		t.Fatalf("version %d origin %q", v2.Covenant.Version, v2.Covenant.Origin)
	}
	p, err := events.ParseWitnessPolicy(v2.Covenant.WitnessPolicy)
	if err != nil || p.Quorum != "fgs" || len(p.Witnesses) != 2 {
		t.Fatalf("the policy of version 2: %+v, %v", p, err)
	}
	chain, err := events.NewChain(m.Signed, m.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	if err := chain.Append(v2); err != nil {
		t.Fatalf("version 2 does not follow version 1: %v", err)
	}
	// Only a version 1 is followed so.
	m2 := *m
	m2.Signed = v2
	if _, err := m2.CovenantWithPolicy(policy); err == nil {
		t.Fatal("a version 3 was made from version 2 as if it were version 1")
	}
}

// TestDemoContacts: each demo covenant names the contacts a parent's report
// prints: the FG's, and the central desk's (Amersfoort) or every party's
// desk (Waterweg, which has no central desk).
func TestDemoContacts(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m, err := Generate(filepath.Join(t.TempDir(), "demo-keys"), name)
			if err != nil {
				t.Fatal(err)
			}
			c := m.Signed.Covenant
			if c.Contact == nil || c.Contact.FG == nil || c.Contact.FG.Email == "" {
				t.Fatalf("no FG contact: %+v", c.Contact)
			}
			if c.CentralDesk {
				if c.Contact.Desk == nil || c.Contact.Desk.Phone == "" {
					t.Error("a central desk without its contact")
				}
				return
			}
			for _, p := range c.Parties {
				if p.Contact == nil || p.Contact.Address == "" {
					t.Errorf("party %s has no desk contact", p.ID)
				}
			}
		})
	}
}
