package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

// spoorOK runs the command line in-process and returns its standard
// output, failing the test when it fails.
func spoorOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runSpoor(t, args...)
	if code != 0 {
		t.Fatalf("spoor %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// spoorFails runs the command line in-process and checks that it fails
// with want in its standard error.
func spoorFails(t *testing.T, want string, args ...string) {
	t.Helper()
	_, errOut, code := runSpoor(t, args...)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("spoor %s: exit %d, stderr %q, want a failure saying %q", strings.Join(args, " "), code, errOut, want)
	}
}

// TestCovenantNextAddsAndRetiresWitnesses walks what a covenant
// administrator does on each demo covenant: covenant next with a 2-of-3
// witness policy, covenant sign with --previous, and the ledger that holds
// version 1 takes the result as version 2 with that policy in force; then
// version 3 without witnesses, which the ledger takes as well.
func TestCovenantNextAddsAndRetiresWitnesses(t *testing.T) {
	for _, name := range demo.Names() {
		t.Run(name, func(t *testing.T) {
			env := testledger.NewDemo(t, name)
			l, s := env.Open(t, ledger.Config{})
			l.Close()
			s.Close()

			dir := t.TempDir()
			v1 := filepath.Join(env.Demo.Dir, demo.SignedFile)
			adminKey := filepath.Join(env.Demo.Dir, demo.AdminKeyFile)
			var policy strings.Builder
			for i := range 3 {
				_, vkey, err := verifier.GenerateWitnessKey(fmt.Sprintf("witness.example/fg-%d", i))
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&policy, "witness fg-%d %s http://127.0.0.1:%d\n", i, vkey, 8090+i)
			}
			policy.WriteString("group fgs 2 fg-0 fg-1 fg-2\nquorum fgs\n")
			policyFile := filepath.Join(dir, "policy.txt")
			if err := os.WriteFile(policyFile, []byte(policy.String()), 0o644); err != nil {
				t.Fatal(err)
			}

			v2yaml, v2 := filepath.Join(dir, "covenant-v2.yaml"), filepath.Join(dir, "covenant-v2.signed")
			out := spoorOK(t, "covenant", "next", v1, "--witness-policy", policyFile, "-o", v2yaml)
			if want := "covenant version 2 of " + env.Demo.Signed.Covenant.Origin + " (previous " +
				env.Demo.Signed.Hash() + ", witness policy: 3 witnesses, quorum fgs)"; !strings.Contains(out, want) {
				t.Fatalf("covenant next printed %q, want %q", out, want)
			}
			// Nothing but the chain fields and the policy changed: the
			// administrator reads the same document, comments and all.
			y1, y2 := string(env.Demo.Signed.Envelope.Payload), readText(t, v2yaml)
			y1 = strings.Replace(y1, "\nversion: 1\n", "\nversion: 2\n", 1)
			y1 = strings.Replace(y1, "\nprevious: \"\"\n", "\nprevious: \""+env.Demo.Signed.Hash()+"\"\n", 1)
			if !strings.HasPrefix(y2, y1) || !strings.HasPrefix(y2[len(y1):], "witness_policy: |\n  witness fg-0 ") {
				t.Fatalf("covenant next changed more than version, previous and the policy:\n%s", y2)
			}
			spoorOK(t, "covenant", "sign", v2yaml, "--key", adminKey, "--previous", v1, "-o", v2)
			sc2 := parseSignedFile(t, v2)
			chain, err := events.NewChain(env.Demo.Signed, env.Demo.AdminVkey)
			if err != nil {
				t.Fatal(err)
			}
			if err := chain.Append(sc2); err != nil {
				t.Fatalf("version 2 does not follow version 1: %v", err)
			}

			l, s = env.Open(t, ledger.Config{Covenant: sc2})
			cur, _ := l.Covenant()
			wp, perr := l.WitnessPolicy()
			l.Close()
			s.Close()
			if cur.Covenant.Version != 2 || cur.Hash() != sc2.Hash() {
				t.Fatalf("the ledger's covenant in force is version %d, want the signed version 2", cur.Covenant.Version)
			}
			if perr != nil || wp == nil || len(wp.Witnesses) != 3 || wp.Quorum != "fgs" || wp.Witnesses[1].URL != "http://127.0.0.1:8091" {
				t.Fatalf("the ledger's witness policy: %+v, %v", wp, perr)
			}

			// Retiring every witness is a version too; version 3 follows 2.
			v3yaml, v3 := filepath.Join(dir, "covenant-v3.yaml"), filepath.Join(dir, "covenant-v3.signed")
			spoorOK(t, "covenant", "next", v2, "--no-witness-policy", "-o", v3yaml)
			if strings.Contains(readText(t, v3yaml), "witness_policy") {
				t.Fatal("--no-witness-policy left the witness_policy block")
			}
			spoorOK(t, "covenant", "sign", v3yaml, "--key", adminKey, "-o", v3)
			sc3 := parseSignedFile(t, v3)
			if err := chain.Append(sc3); err != nil {
				t.Fatalf("version 3 does not follow version 2: %v", err)
			}
			l, s = env.Open(t, ledger.Config{Covenant: sc3})
			cur, _ = l.Covenant()
			wp, perr = l.WitnessPolicy()
			l.Close()
			s.Close()
			if cur.Covenant.Version != 3 || wp != nil || perr != nil {
				t.Fatalf("after version 3: covenant version %d, policy %+v, %v", cur.Covenant.Version, wp, perr)
			}
		})
	}
}

// TestCovenantNextRefuses checks that covenant next writes nothing for a
// policy the covenant's validation refuses, for an effective_from that
// goes back in time, and for both policy flags at once.
func TestCovenantNextRefuses(t *testing.T) {
	env := testledger.NewDemo(t, "amersfoort")
	v1 := filepath.Join(env.Demo.Dir, demo.SignedFile)
	dir := t.TempDir()
	_, wvkey, err := verifier.GenerateWitnessKey("witness.example/fg-a")
	if err != nil {
		t.Fatal(err)
	}
	policies := map[string]string{
		// tlog-policy allows quorum none; a covenant does not.
		"none": "witness fg-a " + wvkey + " http://127.0.0.1:8090\nquorum none\n",
		// The operator's own cosigner key could meet it alone.
		"own-key": "witness own " + env.CosVkey + "\nwitness fg-a " + wvkey + "\ngroup g any own fg-a\nquorum g\n",
		"garbage": "witnesses please\n",
	}
	for name, text := range policies {
		t.Run(name, func(t *testing.T) {
			pf, out := filepath.Join(dir, name+".txt"), filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(pf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			spoorFails(t, "the next version would be invalid: invalid covenant: witness_policy", "covenant", "next", v1, "--witness-policy", pf, "-o", out)
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("covenant next wrote %s for a refused policy", out)
			}
		})
	}
	out := filepath.Join(dir, "early.yaml")
	spoorFails(t, "versions never go back in time", "covenant", "next", v1, "--effective-from", "2001-01-01T00:00:00Z", "-o", out)
	spoorFails(t, "not both", "covenant", "next", v1, "--witness-policy", "x", "--no-witness-policy", "-o", out)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("covenant next wrote %s after refusing", out)
	}
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseSignedFile(t *testing.T, path string) *events.SignedCovenant {
	t.Helper()
	sc, err := events.ParseSignedCovenant([]byte(readText(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return sc
}

// TestCovenantNextContacts: --contacts writes the covenant-wide and the
// named parties' contacts into the next version, keeps every other party's,
// and the result signs and follows; a contacts file naming an unknown
// party, a contact without a way to reach it, or an unknown key is refused
// and nothing is written.
func TestCovenantNextContacts(t *testing.T) {
	for _, name := range demo.Names() {
		t.Run(name, func(t *testing.T) {
			env := testledger.NewDemo(t, name)
			dir := t.TempDir()
			v1 := filepath.Join(env.Demo.Dir, demo.SignedFile)
			c1 := env.Demo.Signed.Covenant
			party, other := c1.Parties[0], c1.Parties[1]
			contacts := filepath.Join(dir, "contacts.yaml")
			writeText(t, contacts, `contact:
  desk: {name: "Nieuwe privacybalie", email: "balie@nieuw.example"}
  fg: {name: "Nieuwe FG", role: "functionaris gegevensbescherming", phone: "030 000 0000"}
parties:
  `+party.ID+`: {name: "Balie `+party.ID+`", address: "Postbus 9, 1000 AA Ergens"}
`)
			v2yaml, v2 := filepath.Join(dir, "covenant-v2.yaml"), filepath.Join(dir, "covenant-v2.signed")
			spoorOK(t, "covenant", "next", v1, "--contacts", contacts, "-o", v2yaml)
			spoorOK(t, "covenant", "sign", v2yaml, "--key", filepath.Join(env.Demo.Dir, demo.AdminKeyFile), "--previous", v1, "-o", v2)
			sc2 := parseSignedFile(t, v2)
			chain, err := events.NewChain(env.Demo.Signed, env.Demo.AdminVkey)
			if err != nil {
				t.Fatal(err)
			}
			if err := chain.Append(sc2); err != nil {
				t.Fatalf("version 2 does not follow version 1: %v", err)
			}
			c2 := sc2.Covenant
			if c2.Contact == nil || c2.Contact.FG == nil || c2.Contact.FG.Phone != "030 000 0000" || c2.Contact.Desk == nil || c2.Contact.Desk.Email != "balie@nieuw.example" {
				t.Errorf("the covenant-wide contacts: %+v", c2.Contact)
			}
			p2, _ := c2.Party(party.ID)
			if p2.Contact == nil || p2.Contact.Address != "Postbus 9, 1000 AA Ergens" {
				t.Errorf("party %s's contact: %+v", party.ID, p2.Contact)
			}
			o2, _ := c2.Party(other.ID)
			if (other.Contact == nil) != (o2.Contact == nil) || (other.Contact != nil && *other.Contact != *o2.Contact) {
				t.Errorf("party %s's contact changed: %+v -> %+v", other.ID, other.Contact, o2.Contact)
			}

			for what, c := range map[string]struct{ body, want string }{
				"an unknown party": {"parties:\n  nobody-here: {name: \"X\", email: \"x@x.example\"}\n", `name party "nobody-here"`},
				"no way to reach":  {"contact:\n  fg: {name: \"FG zonder adres\"}\n", "the next version would be invalid"},
				"an unknown key":   {"contact:\n  fg: {name: \"FG\", email: \"fg@x.example\", fax: \"1\"}\n", "not a contacts file"},
				"nothing":          {"parties: {}\n", "names no contact"},
				"a mail without @": {"contact:\n  fg: {name: \"FG\", email: \"fg.x.example\"}\n", "the next version would be invalid"},
			} {
				bad := filepath.Join(dir, "bad.yaml")
				writeText(t, bad, c.body)
				out := filepath.Join(dir, "refused.yaml")
				spoorFails(t, c.want, "covenant", "next", v1, "--contacts", bad, "-o", out)
				if _, err := os.Stat(out); err == nil {
					t.Errorf("contacts with %s: a file was written", what)
				}
			}
		})
	}
}

// TestCovenantNextSetsOIN walks how an administrator gives a party a new
// OIN (a new PKIoverheid certificate for the gateway's mutual TLS): covenant
// next --oin, sign, and the ledger that holds version 1 takes version 2, in
// which the OIN maps to the party. The demo covenants list an OIN for every
// party already; an OIN that is not 20 digits, one that another party has,
// and a party the covenant lacks are refused and nothing is written.
func TestCovenantNextSetsOIN(t *testing.T) {
	for _, name := range demo.Names() {
		t.Run(name, func(t *testing.T) {
			env := testledger.NewDemo(t, name)
			l, s := env.Open(t, ledger.Config{})
			l.Close()
			s.Close()
			c1 := env.Demo.Signed.Covenant
			for _, p := range c1.Parties {
				if !events.ValidOIN(p.OIN) {
					t.Fatalf("demo party %s has no OIN (%q)", p.ID, p.OIN)
				}
			}
			party, other := c1.Parties[0], c1.Parties[1]
			const newOIN = "00000099900000000000"
			dir := t.TempDir()
			v1 := filepath.Join(env.Demo.Dir, demo.SignedFile)
			v2yaml, v2 := filepath.Join(dir, "covenant-v2.yaml"), filepath.Join(dir, "covenant-v2.signed")
			spoorOK(t, "covenant", "next", v1, "--oin", party.ID+"="+newOIN, "-o", v2yaml)
			// Only the one line changed, besides the chain fields.
			y1, y2 := string(env.Demo.Signed.Envelope.Payload), readText(t, v2yaml)
			y1 = strings.Replace(y1, "\nversion: 1\n", "\nversion: 2\n", 1)
			y1 = strings.Replace(y1, "\nprevious: \"\"\n", "\nprevious: \""+env.Demo.Signed.Hash()+"\"\n", 1)
			y1 = strings.Replace(y1, `oin: "`+party.OIN+`"`, `oin: "`+newOIN+`"`, 1)
			if y1 != y2 {
				t.Fatalf("covenant next --oin changed more than the OIN and the chain fields:\n%s", y2)
			}
			spoorOK(t, "covenant", "sign", v2yaml, "--key", filepath.Join(env.Demo.Dir, demo.AdminKeyFile), "--previous", v1, "-o", v2)
			sc2 := parseSignedFile(t, v2)
			l, s = env.Open(t, ledger.Config{Covenant: sc2})
			cur, _ := l.Covenant()
			l.Close()
			s.Close()
			if cur.Covenant.Version != 2 {
				t.Fatalf("the ledger runs version %d, want 2", cur.Covenant.Version)
			}
			if p, ok := cur.Covenant.PartyByOIN(newOIN); !ok || p.ID != party.ID {
				t.Fatalf("OIN %s maps to %q, %v in version 2; want %s", newOIN, p.ID, ok, party.ID)
			}
			if _, ok := cur.Covenant.PartyByOIN(party.OIN); ok {
				t.Fatal("the party's old OIN still maps to a party in version 2")
			}

			out := filepath.Join(dir, "bad.yaml")
			spoorFails(t, "parties[0].oin: must be an OIN", "covenant", "next", v1, "--oin", party.ID+"=123", "-o", out)
			spoorFails(t, "already the OIN of "+party.ID, "covenant", "next", v1, "--oin", other.ID+"="+party.OIN, "-o", out)
			spoorFails(t, `no party "gemeente-nergens"`, "covenant", "next", v1, "--oin", "gemeente-nergens="+newOIN, "-o", out)
			spoorFails(t, "want PARTY=OIN", "covenant", "next", v1, "--oin", newOIN, "-o", out)
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("covenant next wrote %s after refusing", out)
			}
		})
	}
}

// TestCovenantNextDemoOINs: a demo directory made before the demo
// templates listed OINs holds a version 1 without them. covenant next
// --demo-oins writes version 2 with the template's OIN for every party,
// which follows the signed version 1: the ledger that logged version 1
// takes it, and nothing already signed changes.
func TestCovenantNextDemoOINs(t *testing.T) {
	for _, name := range demo.Names() {
		t.Run(name, func(t *testing.T) {
			env := testledger.NewDemo(t, name)
			// The version 1 an older Spoor made: the same template without
			// the oin lines, signed by the demo administrator, logged.
			var kept []string
			for line := range strings.SplitSeq(string(env.Demo.Signed.Envelope.Payload), "\n") {
				if !strings.HasPrefix(line, "    oin: ") {
					kept = append(kept, line)
				}
			}
			old, err := events.SignCovenant([]byte(strings.Join(kept, "\n")), env.Demo.AdminSkey)
			if err != nil {
				t.Fatal(err)
			}
			v1 := filepath.Join(t.TempDir(), "covenant-v1.signed")
			if err := os.WriteFile(v1, old, 0o644); err != nil {
				t.Fatal(err)
			}
			sc1 := parseSignedFile(t, v1)
			for _, p := range sc1.Covenant.Parties {
				if p.OIN != "" {
					t.Fatalf("the old version 1 lists an OIN for %s", p.ID)
				}
			}
			l, s := env.Open(t, ledger.Config{Covenant: sc1})
			l.Close()
			s.Close()

			dir := t.TempDir()
			v2yaml, v2 := filepath.Join(dir, "covenant-v2.yaml"), filepath.Join(dir, "covenant-v2.signed")
			spoorOK(t, "covenant", "next", v1, "--demo-oins", "-o", v2yaml)
			spoorOK(t, "covenant", "sign", v2yaml, "--key", filepath.Join(env.Demo.Dir, demo.AdminKeyFile), "--previous", v1, "-o", v2)
			sc2 := parseSignedFile(t, v2)
			l, s = env.Open(t, ledger.Config{Covenant: sc2})
			cur, _ := l.Covenant()
			l.Close()
			s.Close()
			if cur.Covenant.Version != 2 {
				t.Fatalf("the ledger runs version %d, want 2", cur.Covenant.Version)
			}
			for _, p := range env.Demo.Signed.Covenant.Parties {
				got, ok := cur.Covenant.Party(p.ID)
				if !ok || got.OIN != p.OIN || !events.ValidOIN(got.OIN) {
					t.Errorf("party %s has OIN %q in version 2, want the template's %q", p.ID, got.OIN, p.OIN)
				}
			}
		})
	}
}
