// Package demo makes the two demo covenants of Spoor, regio Amersfoort and
// the Waterweg municipalities, with fresh DEMO keys, so that `spoor serve`,
// `spoor simulate` and the tests can run a realistic region without anyone
// handing out real keys.
//
// Data flows one way. The covenant templates (amersfoort.yaml and
// waterweg.yaml, embedded in the binary) list the real signatories and a
// realistic vocabulary, with placeholders for keys. Generate makes an
// administrator key, one signing key per party and a pseudonym key, fills
// the template, validates and signs it as covenant version 1, and writes
// everything to a key directory (mode 0700, files 0600). Load reads such a
// directory back and checks that its parts belong together; Ensure does
// whichever is needed. Nothing here is fit for real data: the README.txt in
// every directory says so.
package demo

import (
	"bytes"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
)

//go:embed amersfoort.yaml waterweg.yaml
var templates embed.FS

// The files of a demo key directory.
const (
	AdminKeyFile   = "admin.key"       // administrator signing key (signed-note skey)
	AdminPubFile   = "admin.pub"       // administrator verifier key (signed-note vkey), for pinning
	SubjectKeyFile = "subject-k1.key"  // pseudonym key K_v "k1"
	CovenantFile   = "covenant.yaml"   // the filled template, as signed
	SignedFile     = "covenant.signed" // covenant version 1, signed; written last
	ReadmeFile     = "README.txt"      // says these are demo keys
	// Each party's key is in "<party-id>.key" (see PartyKeyFile).
)

// SubjectKeyID is the id of the demo pseudonym key.
const SubjectKeyID = "k1"

// PartyKeyFile returns the name of a party's key file in a demo directory.
func PartyKeyFile(party string) string { return party + ".key" }

// ErrUnknownDemo means a name is not one of Names().
var ErrUnknownDemo = errors.New("demo: no such demo covenant")

type demoCovenant struct {
	name      string // what Names returns
	template  string // file in templates
	origin    string // the template's origin, how Load recognises a directory
	adminName string // name of the administrator's note key
}

var demos = []demoCovenant{
	{"amersfoort", "amersfoort.yaml", "spoor.example/regio-amersfoort", "regio-amersfoort.convenantbeheer.demo"},
	{"waterweg", "waterweg.yaml", "spoor.example/waterweg", "waterweg.convenantbeheer.demo"},
}

// Names lists the demo covenants: "amersfoort" and "waterweg".
func Names() []string {
	out := make([]string, len(demos))
	for i, d := range demos {
		out[i] = d.name
	}
	return out
}

func lookup(name string) (demoCovenant, error) {
	for _, d := range demos {
		if d.name == name {
			return d, nil
		}
	}
	return demoCovenant{}, fmt.Errorf("%w: %q (there are %s)", ErrUnknownDemo, name, strings.Join(Names(), ", "))
}

// DeskUser is a demo privacy-desk user: its token is DIR/demo-keys/<Name>.token
// (made by spoor serve on first start); Party is the party it answers for,
// "" for a central desk user.
type DeskUser struct {
	Name  string
	Party string
}

// DeskUsers returns the demo desk users of demo covenant name, two per
// scope so that one registers and a second one releases (or proposes and
// confirms an erasure). Regio Amersfoort names a central desk: desk-1 and
// desk-2 answer for every party. The Waterweg covenant has none: each party
// answers for its own disclosures, so desk-1 and desk-2 are the desk of
// gemeente-vlaardingen and desk-3 and desk-4 that of swv-ppo-nwn.
func DeskUsers(name string) []DeskUser {
	switch name {
	case "waterweg":
		return []DeskUser{{"desk-1", "gemeente-vlaardingen"}, {"desk-2", "gemeente-vlaardingen"},
			{"desk-3", "swv-ppo-nwn"}, {"desk-4", "swv-ppo-nwn"}}
	case "amersfoort":
		return []DeskUser{{"desk-1", ""}, {"desk-2", ""}}
	}
	return nil
}

// Material is everything of one demo directory: the signed covenant and
// every key that it names.
type Material struct {
	// Name is the demo's name ("amersfoort" or "waterweg").
	Name string
	// Dir is the key directory.
	Dir string
	// Signed is covenant version 1, signed by the administrator.
	Signed *events.SignedCovenant
	// AdminSkey and AdminVkey are the administrator's key pair in
	// signed-note form.
	AdminSkey, AdminVkey string
	// Parties maps every party id of the covenant to its signing key.
	Parties map[string]*events.PartyKey
	// SubjectKey is the pseudonym key K_v "k1".
	SubjectKey events.SubjectKey
}

// Ensure loads the demo directory dir if it holds a signed covenant, and
// generates it otherwise. A directory that holds another demo is an error.
func Ensure(dir, name string) (*Material, error) {
	if _, err := lookup(name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, SignedFile)); err == nil {
		m, err := Load(dir)
		if err != nil {
			return nil, err
		}
		if m.Name != name {
			return nil, fmt.Errorf("demo: %s holds the %s demo, not %s", dir, m.Name, name)
		}
		return m, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("demo: couldn't look at %s: %w", dir, err)
	}
	return Generate(dir, name)
}

// Generate makes fresh keys and the signed covenant of the demo name and
// writes them to dir, which must not exist or be empty. It builds the
// directory under a temporary name beside dir and renames it into place, so
// dir is never left half-written. It never overwrites: on a directory that
// already holds demo keys it fails with an error wrapping fs.ErrExist (use
// Ensure to load them instead).
func Generate(dir, name string) (*Material, error) {
	d, err := lookup(name)
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	switch entries, err := os.ReadDir(dir); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("demo: couldn't read %s: %w", dir, err)
	case slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == SignedFile }):
		return nil, fmt.Errorf("demo: %s already holds demo keys (Ensure loads them): %w", dir, fs.ErrExist)
	case len(entries) > 0:
		return nil, fmt.Errorf("demo: %s is not empty and holds no demo covenant; remove it or choose another directory: %w", dir, fs.ErrExist)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("demo: couldn't create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("demo: couldn't create a temporary directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m, err := generateInto(tmp, d)
	if err != nil {
		return nil, err
	}
	// The renamed directory and the files in it must survive a crash.
	if err := durable.SyncDir(tmp); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	// os.Rename does not replace a directory, even an empty one: remove the
	// empty dir (checked above) first.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("demo: couldn't replace the empty directory %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("demo: couldn't move the keys into %s: %w", dir, err)
	}
	done = true
	if err := durable.SyncDir(parent); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	m.Dir = dir
	return m, nil
}

// generateInto makes the keys and the signed covenant and writes them to
// the empty directory dir, covenant.signed last.
func generateInto(dir string, d demoCovenant) (*Material, error) {
	skey, vkey, err := events.GenerateAdminKey(d.adminName)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	parties := map[string]*events.PartyKey{}
	yml, err := Fill(d.name, vkey, func(party string) (*events.PartyKey, error) {
		k, ok := parties[party]
		if !ok {
			var err error
			if k, err = events.GeneratePartyKey(party); err != nil {
				return nil, err
			}
			parties[party] = k
		}
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	signed, err := events.SignCovenant(yml, skey)
	if err != nil {
		return nil, fmt.Errorf("demo: template %s: %w", d.template, err)
	}
	sc, err := events.ParseSignedCovenant(signed)
	if err != nil {
		return nil, fmt.Errorf("demo: template %s: %w", d.template, err)
	}
	if err := checkPartyKeys(sc.Covenant, parties); err != nil {
		return nil, fmt.Errorf("demo: template %s: %w", d.template, err)
	}
	subject, err := events.GenerateSubjectKey(SubjectKeyID)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	// Secrets first, covenant.signed last: its presence marks a whole set.
	type file struct {
		name string
		data []byte
	}
	files := []file{
		{ReadmeFile, []byte(readme(d, sc.Covenant))},
		{AdminKeyFile, []byte(skey + "\n")},
		{AdminPubFile, []byte(vkey + "\n")},
	}
	subjectJSON, err := subject.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("demo: couldn't encode the pseudonym key: %w", err)
	}
	files = append(files, file{SubjectKeyFile, subjectJSON})
	for _, p := range sc.Covenant.Parties {
		b, err := parties[p.ID].MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("demo: couldn't encode the key of %s: %w", p.ID, err)
		}
		files = append(files, file{PartyKeyFile(p.ID), b})
	}
	files = append(files, file{CovenantFile, yml}, file{SignedFile, signed})
	for _, f := range files {
		if err := durable.WriteNewFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return nil, fmt.Errorf("demo: couldn't create key file: %w", err)
		}
	}
	return &Material{Name: d.name, Dir: dir, Signed: sc, AdminSkey: skey, AdminVkey: vkey,
		Parties: parties, SubjectKey: subject}, nil
}

// Fill returns the YAML of demo covenant name's version 1 with adminVkey as
// its administrator key and each party's public key from keyOf, which is
// called once per party in the template's order. Generate fills it with
// fresh keys; the worked example of docs/wire-format.md fills it with keys
// derived from published seeds, so that its bytes are reproducible.
func Fill(name, adminVkey string, keyOf func(party string) (*events.PartyKey, error)) ([]byte, error) {
	d, err := lookup(name)
	if err != nil {
		return nil, err
	}
	fill := template.FuncMap{"key": func(party string) (string, error) {
		k, err := keyOf(party)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(k.Public()), nil
	}}
	text, err := templates.ReadFile(d.template)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	tmpl, err := template.New(d.template).Funcs(fill).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("demo: template %s: %w", d.template, err)
	}
	var yml bytes.Buffer
	if err := tmpl.Execute(&yml, struct{ AdminKey string }{adminVkey}); err != nil {
		return nil, fmt.Errorf("demo: template %s: %w", d.template, err)
	}
	return yml.Bytes(), nil
}

// OINs returns the OIN the template of the demo covenant with origin lists
// for each party. A demo directory made before the templates had OINs holds
// a version 1 without them; `spoor covenant next --demo-oins` adds these in
// version 2, so the signed version 1 and the log that holds it stay valid.
func OINs(origin string) (map[string]string, error) {
	for _, d := range demos {
		if d.origin != origin {
			continue
		}
		// Any keys do: only the OINs are read.
		_, vkey, err := events.GenerateAdminKey(d.adminName)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		yml, err := Fill(d.name, vkey, func(party string) (*events.PartyKey, error) { return events.GeneratePartyKey(party) })
		if err != nil {
			return nil, err
		}
		c, err := events.ParseCovenantYAML(yml)
		if err != nil {
			return nil, fmt.Errorf("demo: template %s: %w", d.template, err)
		}
		out := map[string]string{}
		for _, p := range c.Parties {
			out[p.ID] = p.OIN
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: no demo covenant has origin %q", ErrUnknownDemo, origin)
}

// checkPartyKeys checks that every party of c has exactly the one key in
// keys, and keys has no other party.
func checkPartyKeys(c *events.Covenant, keys map[string]*events.PartyKey) error {
	for _, p := range c.Parties {
		k, ok := keys[p.ID]
		if !ok {
			return fmt.Errorf("party %s has no key", p.ID)
		}
		if k.Party != p.ID {
			return fmt.Errorf("the key of party %s is for party %s", p.ID, k.Party)
		}
		if len(p.Keys) != 1 || p.Keys[0].PublicKey != base64.StdEncoding.EncodeToString(k.Public()) {
			return fmt.Errorf("party %s is not listed with exactly its key", p.ID)
		}
	}
	for id := range keys {
		if _, ok := c.Party(id); !ok {
			return fmt.Errorf("a key was made for %s, which is not a party", id)
		}
	}
	return nil
}

func readme(d demoCovenant, c *events.Covenant) string {
	var b strings.Builder
	fmt.Fprintf(&b, `DEMO KEYS - NEVER USE THEM FOR REAL DATA

This directory holds keys that Spoor generated for its demo covenant %q
(origin %s). Anyone can make keys like these; they protect nothing and prove
nothing. Never record disclosures about real children with them, and never
use these files outside a demo or a test.

  %-28s the covenant administrator's signing key (secret)
  %-28s the administrator's verifier key: pin it with --admin
  %-28s the pseudonym key K_v %q (secret)
  %-28s covenant version 1, as signed
  %-28s covenant version 1, signed: the first entry of the log
`, d.name, c.Origin, AdminKeyFile, AdminPubFile, SubjectKeyFile, SubjectKeyID, CovenantFile, SignedFile)
	fmt.Fprintf(&b, "\nand one signing key per party (secret):\n\n")
	for _, p := range c.Parties {
		fmt.Fprintf(&b, "  %-28s %s\n", PartyKeyFile(p.ID), p.Name)
	}
	return b.String()
}

// Load reads a demo directory back and checks that it is whole and
// consistent: the signed covenant is version 1 signed by the key in
// admin.pub, admin.key is that key's private half, covenant.yaml is what
// was signed, and every party of the covenant has its key file with the key
// the covenant lists.
func Load(dir string) (*Material, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		return b, nil
	}
	signed, err := read(SignedFile)
	if err != nil {
		return nil, err
	}
	sc, err := events.ParseSignedCovenant(signed)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", SignedFile, err)
	}
	name := ""
	for _, d := range demos {
		if d.origin == sc.Covenant.Origin {
			name = d.name
		}
	}
	if name == "" {
		return nil, fmt.Errorf("demo: %s: origin %q is not one of the demo covenants", SignedFile, sc.Covenant.Origin)
	}
	vkeyBytes, err := read(AdminPubFile)
	if err != nil {
		return nil, err
	}
	vkey := strings.TrimSpace(string(vkeyBytes))
	if _, err := events.NewChain(sc, vkey); err != nil {
		return nil, fmt.Errorf("demo: %s does not match %s: %w", SignedFile, AdminPubFile, err)
	}
	skeyBytes, err := read(AdminKeyFile)
	if err != nil {
		return nil, err
	}
	skey := strings.TrimSpace(string(skeyBytes))
	priv, err := events.AdminPrivateKey(skey)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", AdminKeyFile, err)
	}
	pub, err := events.AdminPublicKey(vkey)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", AdminPubFile, err)
	}
	if !pub.Equal(priv.Public()) {
		return nil, fmt.Errorf("demo: %s and %s are not one key pair", AdminKeyFile, AdminPubFile)
	}
	yml, err := read(CovenantFile)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(yml, sc.Envelope.Payload) {
		return nil, fmt.Errorf("demo: %s differs from the covenant signed in %s", CovenantFile, SignedFile)
	}
	parties := map[string]*events.PartyKey{}
	for _, p := range sc.Covenant.Parties {
		k, err := events.LoadPartyKey(filepath.Join(dir, PartyKeyFile(p.ID)))
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		parties[p.ID] = k
	}
	if err := checkPartyKeys(sc.Covenant, parties); err != nil {
		return nil, fmt.Errorf("demo: %s: %w", dir, err)
	}
	subject, err := events.LoadSubjectKey(filepath.Join(dir, SubjectKeyFile))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if !slices.Contains(sc.Covenant.SubjectKeys, subject.ID) {
		return nil, fmt.Errorf("demo: %s: pseudonym key %q is not in the covenant's subject_keys", SubjectKeyFile, subject.ID)
	}
	return &Material{Name: name, Dir: dir, Signed: sc, AdminSkey: skey, AdminVkey: vkey,
		Parties: parties, SubjectKey: subject}, nil
}

// CovenantWithPolicy returns covenant version 2, following m's version 1,
// with policy (a C2SP tlog-policy text) as its witness policy, signed by
// the demo administrator: how a covenant takes on witnesses. The bench and
// the tests use it; a real covenant's next version is written by hand and
// signed with `spoor covenant sign`.
func (m *Material) CovenantWithPolicy(policy string) (*events.SignedCovenant, error) {
	y := string(m.Signed.Envelope.Payload)
	if !strings.Contains(y, "\nversion: 1\n") || !strings.Contains(y, "\nprevious: \"\"\n") {
		return nil, errors.New("demo: the covenant is not a version 1 as Generate writes it")
	}
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+m.Signed.Hash()+"\"\n", 1)
	var b strings.Builder
	b.WriteString(strings.TrimRight(y, "\n"))
	b.WriteString("\nwitness_policy: |\n")
	for line := range strings.SplitSeq(strings.TrimRight(policy, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	signed, err := events.SignCovenant([]byte(b.String()), m.AdminSkey)
	if err != nil {
		return nil, fmt.Errorf("demo: couldn't sign covenant version 2 with a witness policy: %w", err)
	}
	sc, err := events.ParseSignedCovenant(signed)
	if err != nil {
		return nil, fmt.Errorf("demo: covenant version 2 with a witness policy: %w", err)
	}
	return sc, nil
}
