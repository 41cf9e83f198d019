package main

// spoor covenant next: the YAML of the version after a signed one, so that
// adding or retiring witnesses (or any other change) starts from exactly
// what was signed and logged, with the chain fields already right. The
// file is edited as a YAML tree, not as text, so that a key written in
// another style (a comment after it, quotes) is still found, and comments
// elsewhere are kept for the administrator who reads it before signing.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
)

func newCovenantNextCmd() *cobra.Command {
	var policyFile, out, effective, contactsFile string
	var removePolicy bool
	var oins []string
	var demoOINs bool
	cmd := &cobra.Command{
		Use:   "next covenant.signed -o covenant-vN.yaml [--witness-policy POLICY_FILE | --no-witness-policy] [--contacts CONTACTS_FILE] [--oin PARTY=OIN]... [--demo-oins] [--effective-from TIME]",
		Short: "Write the next covenant version's YAML (version+1, previous = this version's hash), for example with witnesses",
		Long: `Write the YAML of the version after a signed covenant version: the same
document with version one higher and previous set to the SHA-256 of the given
signed file (the hash the ledger checks). With --witness-policy FILE the
witness_policy block becomes the C2SP tlog-policy text in FILE, for example

  witness fg-a fg-a.example+1234abcd+BASE64 http://127.0.0.1:8090
  witness fg-b fg-b.example+5678ef01+BASE64 http://127.0.0.1:8091
  witness fg-c fg-c.example+9abc2345+BASE64 http://127.0.0.1:8092
  group fgs 2 fg-a fg-b fg-c
  quorum fgs

(the witnesses' verifier keys are what spoor witness keygen prints; the URL
is each witness's address, where the ledger POSTs /add-checkpoint).
With --no-witness-policy the block is removed and the log goes back to its
operator's signatures alone. Without either the policy stays as it was.

With --contacts FILE the version names who a parent contacts, as the parent's
report prints them (a covenant without them reads "contactgegevens onbekend"
there). FILE is YAML:

  contact:                 # the central desk (when central_desk is true) and the FG
    desk: {name: "Privacybalie regio", email: "privacy@regio.example", phone: "033 000 0100"}
    fg:   {name: "FG regio", role: "functionaris gegevensbescherming", email: "fg@regio.example"}
  parties:                 # each party's own desk, by party id
    gemeente-vlaardingen: {name: "Privacybalie Vlaardingen", address: "Postbus 1, 3130 AA Vlaardingen"}

Each contact has a name and at least one of email, phone and address (role is
optional). A contact given replaces the one there; parties not named keep
theirs. Edit the file by hand for other changes.

The result is checked with the covenant's own validation (a policy whose
quorum is none, or that the log's own keys could meet, is refused) and is
not signed: read it, then sign it with the key named in the given version
and hand it to the ledger:

  spoor covenant sign covenant-v2.yaml --key admin.key --previous covenant.signed -o covenant-v2.signed
  spoor serve --data DIR --covenant covenant-v2.signed

effective_from stays as it was unless --effective-from (RFC 3339, not earlier
than the given version's) sets it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if policyFile != "" && removePolicy {
				return errors.New("give --witness-policy or --no-witness-policy, not both")
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("couldn't read the signed covenant: %w", err)
			}
			prev, err := events.ParseSignedCovenant(b)
			if err != nil {
				return fmt.Errorf("refusing %s: %w", args[0], err)
			}
			var ch covenantChange
			if policyFile != "" {
				p, err := os.ReadFile(policyFile)
				if err != nil {
					return fmt.Errorf("couldn't read the witness policy: %w", err)
				}
				text := string(p)
				ch.policy = &text
			}
			if removePolicy {
				empty := ""
				ch.policy = &empty
			}
			if contactsFile != "" {
				c, err := os.ReadFile(contactsFile)
				if err != nil {
					return fmt.Errorf("couldn't read the contacts: %w", err)
				}
				if ch.contacts, err = parseContactsFile(c); err != nil {
					return fmt.Errorf("%s: %w", contactsFile, err)
				}
			}
			if effective != "" {
				t, err := time.Parse(time.RFC3339, effective)
				if err != nil {
					return fmt.Errorf("--effective-from: %w", err)
				}
				ch.effectiveFrom = &t
			}
			if demoOINs {
				// Only the parties without one: an OIN the administrator
				// set is kept.
				table, err := demo.OINs(prev.Covenant.Origin)
				if err != nil {
					return fmt.Errorf("--demo-oins: %w", err)
				}
				for _, p := range prev.Covenant.Parties {
					if p.OIN == "" && table[p.ID] != "" {
						if ch.oins == nil {
							ch.oins = map[string]string{}
						}
						ch.oins[p.ID] = table[p.ID]
					}
				}
			}
			for _, o := range oins {
				party, oin, ok := strings.Cut(o, "=")
				if !ok {
					return fmt.Errorf("--oin %q: want PARTY=OIN", o)
				}
				if ch.oins == nil {
					ch.oins = map[string]string{}
				}
				ch.oins[party] = oin
			}
			next, err := nextCovenantYAML(prev, ch)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, next, 0o644); err != nil {
				return fmt.Errorf("couldn't write %s: %w", out, err)
			}
			c, _ := events.ParseCovenantYAML(next) // checked by nextCovenantYAML
			policy := "no witness policy"
			if c.WitnessPolicy != "" {
				wp, _ := events.ParseWitnessPolicy(c.WitnessPolicy)
				policy = fmt.Sprintf("witness policy: %d witnesses, quorum %s", len(wp.Witnesses), wp.Quorum)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "covenant version %d of %s (previous %s, %s) -> %s, not signed yet\n",
				c.Version, c.Origin, c.Previous, policy, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&policyFile, "witness-policy", "", "file with the witness policy (C2SP tlog-policy text) for the witness_policy block")
	cmd.Flags().BoolVar(&removePolicy, "no-witness-policy", false, "remove the witness_policy block")
	cmd.Flags().StringVar(&contactsFile, "contacts", "", "YAML file with the contacts of the central desk, the FG and the parties' desks (see above)")
	cmd.Flags().StringArrayVar(&oins, "oin", nil, "set a party's OIN (PARTY=OIN, 20 digits; repeatable), the subject serialNumber of its PKIoverheid certificate")
	cmd.Flags().BoolVar(&demoOINs, "demo-oins", false, "on a demo covenant: give every party without an OIN the test OIN its demo template lists")
	cmd.Flags().StringVar(&effective, "effective-from", "", "the new version's effective_from (RFC 3339); default: unchanged")
	cmd.Flags().StringVarP(&out, "output", "o", "", "YAML file to write (required)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// covenantChange is what the next version changes beyond version and
// previous; a nil field is left as it was.
type covenantChange struct {
	// policy is the new witness_policy text; "" removes the block.
	policy        *string
	effectiveFrom *time.Time
	contacts      *contactsFile
	// oins maps party ids to the OIN each gets (a client certificate's
	// subject serialNumber, for the gateway's mutual TLS).
	oins map[string]string
}

// contactsFile is what --contacts reads.
type contactsFile struct {
	Contact *events.CovenantContacts  `yaml:"contact"`
	Parties map[string]events.Contact `yaml:"parties"`
}

func parseContactsFile(b []byte) (*contactsFile, error) {
	var c contactsFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not a contacts file (contact: desk/fg, parties: by id): %w", err)
	}
	if c.Contact == nil && len(c.Parties) == 0 {
		return nil, errors.New("names no contact: give contact (desk, fg) or parties")
	}
	return &c, nil
}

// nextCovenantYAML returns the YAML of the version after prev, with ch
// applied, checked by events.ParseCovenantYAML and against prev's chain
// fields (all Chain.Append checks but the signature, which needs the
// administrator's key).
func nextCovenantYAML(prev *events.SignedCovenant, ch covenantChange) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(prev.Envelope.Payload, &doc); err != nil {
		return nil, fmt.Errorf("the signed covenant's YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the signed covenant's YAML is not one mapping")
	}
	top := doc.Content[0]
	setScalar(top, "version", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(prev.Covenant.Version + 1)})
	setScalar(top, "previous", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: prev.Hash()})
	if ch.effectiveFrom != nil {
		setScalar(top, "effective_from", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp",
			Value: ch.effectiveFrom.UTC().Format(time.RFC3339)})
	}
	if ch.policy != nil {
		text := strings.TrimSpace(*ch.policy)
		if text == "" {
			removeKey(top, "witness_policy")
		} else {
			// A literal block: the policy's lines as they are, one per line.
			setScalar(top, "witness_policy", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str",
				Style: yaml.LiteralStyle, Value: text + "\n"})
		}
	}
	if ch.contacts != nil {
		if err := setContacts(top, prev.Covenant, ch.contacts); err != nil {
			return nil, err
		}
	}
	if err := setOINs(top, ch.oins); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("couldn't write the next version's YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("couldn't write the next version's YAML: %w", err)
	}
	next, err := events.ParseCovenantYAML(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("the next version would be invalid: %w", err)
	}
	p := prev.Covenant
	switch {
	case next.Version != p.Version+1 || next.Previous != prev.Hash() || next.Origin != p.Origin:
		return nil, errors.New("the next version's chain fields did not come out as written (version, previous, origin)")
	case next.EffectiveFrom.Before(p.EffectiveFrom):
		return nil, fmt.Errorf("effective_from %s is before version %d's (%s); versions never go back in time",
			next.EffectiveFrom.Format(time.RFC3339), p.Version, p.EffectiveFrom.Format(time.RFC3339))
	}
	return buf.Bytes(), nil
}

// setOINs sets the oin of each party in oins, right after its kind so
// that the file reads as the demo covenants do. A party the covenant does
// not list is an error; the OINs themselves are checked by the covenant's
// validation.
func setOINs(top *yaml.Node, oins map[string]string) error {
	if len(oins) == 0 {
		return nil
	}
	parties, err := partyNodes(top)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for id, p := range parties {
		kindAt := -1
		for i := 0; i+1 < len(p.Content); i += 2 {
			if p.Content[i].Value == "kind" {
				kindAt = i
			}
		}
		oin, ok := oins[id]
		if !ok {
			continue
		}
		done[id] = true
		v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: oin}
		if slices.ContainsFunc(p.Content, func(n *yaml.Node) bool { return n.Value == "oin" }) || kindAt < 0 {
			setScalar(p, "oin", v)
			continue
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "oin"}
		p.Content = slices.Insert(p.Content, kindAt+2, k, v)
	}
	for id := range oins {
		if !done[id] {
			return fmt.Errorf("--oin: the covenant has no party %q", id)
		}
	}
	return nil
}

// partyNodes returns the mapping node of each party in the covenant's YAML
// tree, by id.
func partyNodes(top *yaml.Node) (map[string]*yaml.Node, error) {
	var parties *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "parties" {
			parties = top.Content[i+1]
		}
	}
	if parties == nil || parties.Kind != yaml.SequenceNode {
		return nil, errors.New("the signed covenant's YAML has no list of parties")
	}
	out := map[string]*yaml.Node{}
	for _, p := range parties.Content {
		if p.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(p.Content); i += 2 {
			if p.Content[i].Value == "id" {
				out[p.Content[i+1].Value] = p
			}
		}
	}
	return out, nil
}

// setScalar sets the value of key in mapping m, appending the key when it
// is not there. The key's comments stay.
func setScalar(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			old := m.Content[i+1]
			v.LineComment = old.LineComment
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// setContacts writes the contacts of c into the covenant's YAML tree: the
// covenant-wide block, and each named party's. A party id that is not in
// the covenant is refused; the result is validated by the caller.
func setContacts(top *yaml.Node, prev *events.Covenant, c *contactsFile) error {
	enc := func(v any) (*yaml.Node, error) {
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			return nil, fmt.Errorf("couldn't write a contact: %w", err)
		}
		n.Style = yaml.FlowStyle
		for _, m := range n.Content {
			m.Style |= yaml.FlowStyle
		}
		return &n, nil
	}
	if c.Contact != nil {
		n, err := enc(c.Contact)
		if err != nil {
			return err
		}
		n.Style = 0 // desk and fg on lines of their own
		setScalar(top, "contact", n)
	}
	if len(c.Parties) == 0 {
		return nil
	}
	parties, err := partyNodes(top)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for id, p := range parties {
		ct, ok := c.Parties[id]
		if !ok {
			continue
		}
		n, err := enc(ct)
		if err != nil {
			return err
		}
		setScalar(p, "contact", n)
		done[id] = true
	}
	for id := range c.Parties {
		if !done[id] {
			return fmt.Errorf("the contacts name party %q, which covenant version %d does not have", id, prev.Version)
		}
	}
	return nil
}

// removeKey removes key and its value from mapping m.
func removeKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
