package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
)

// The tokens file (spoor serve --tokens) is a JSON array of tokenEntry.
// Only each token's SHA-256 is kept: the token itself is printed once, by
// tokens add, and then exists only with the user it was handed to.

func newTokensCmd() *cobra.Command {
	var path, covenant string
	cmd := &cobra.Command{
		Use:   "tokens add|list|revoke --tokens FILE",
		Short: "Manage the HTTP users of a tokens file (desk, FG and party users)",
		Long: `Edit the tokens file that 'spoor serve --tokens FILE' reads: a JSON array of
{name, role, party, token_sha256}. Roles: desk (the privacy desk), fg (the
functionaris gegevensbescherming) and party (an organisation's system).

  spoor tokens add --tokens FILE --name NAME --role desk|fg|party [--party ID]
  spoor tokens list --tokens FILE
  spoor tokens revoke --tokens FILE --name NAME

add makes a new random token, prints it once on standard output and stores
only its SHA-256; the file is written durably with mode 0600. A name may be
used once. With --covenant (the signed covenant), the party must be one of the
covenant's, and on a covenant without a central desk a desk user must name the
party whose desk it is. The ledger reads the file at start: restart it after a
change.`,
	}
	cmd.PersistentFlags().StringVar(&path, "tokens", "", "the tokens file (required)")
	cmd.PersistentFlags().StringVar(&covenant, "covenant", "", "the signed covenant to check parties against")
	_ = cmd.MarkPersistentFlagRequired("tokens")

	var name, role, party string
	add := &cobra.Command{
		Use:   "add --tokens FILE --name NAME --role desk|fg|party [--party ID] [--covenant FILE]",
		Short: "Add a user: prints the new token once and stores only its hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cov, err := loadCovenantOpt(covenant)
			if err != nil {
				return err
			}
			tok, err := addToken(path, tokenEntry{Name: name, Role: role, Party: party}, cov)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "added %s (%s); the token above is shown only now: hand it to the user, then restart 'spoor serve --tokens %s'\n", name, role, path)
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "the user's name, unique in the file (required)")
	add.Flags().StringVar(&role, "role", "", "desk, fg or party (required)")
	add.Flags().StringVar(&party, "party", "", "the party a party user publishes for, or whose desk a desk user is")
	_ = add.MarkFlagRequired("name")
	_ = add.MarkFlagRequired("role")

	list := &cobra.Command{
		Use:   "list --tokens FILE",
		Short: "List the users: names, roles and parties (never a token or its hash)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := readTokensFile(path)
			if err != nil {
				return err
			}
			return listTokens(cmd.OutOrStdout(), entries)
		},
	}

	var revokeName string
	revoke := &cobra.Command{
		Use:   "revoke --tokens FILE --name NAME",
		Short: "Remove a user by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := revokeToken(path, revokeName); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "revoked %s; restart 'spoor serve --tokens %s' for it to take effect\n", revokeName, path)
			return nil
		},
	}
	revoke.Flags().StringVar(&revokeName, "name", "", "the user's name (required)")
	_ = revoke.MarkFlagRequired("name")

	cmd.AddCommand(add, list, revoke)
	return cmd
}

// loadCovenantOpt reads a signed covenant, or returns nil for no path.
func loadCovenantOpt(path string) (*events.Covenant, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the covenant: %w", err)
	}
	sc, err := events.ParseSignedCovenant(b)
	if err != nil {
		return nil, fmt.Errorf("covenant %s: %w", path, err)
	}
	return sc.Covenant, nil
}

// readTokensFile reads a tokens file strictly; a file that does not exist
// is an empty list.
func readTokensFile(path string) ([]tokenEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the tokens file: %w", err)
	}
	var entries []tokenEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return entries, nil
}

func writeTokensFile(path string, entries []tokenEntry) error {
	if entries == nil {
		entries = []tokenEntry{}
	}
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("couldn't write the tokens file: %w", err)
	}
	return nil
}

// checkTokenEntry refuses an entry serve would refuse, and, with a
// covenant, one whose party the covenant does not have.
func checkTokenEntry(e tokenEntry, cov *events.Covenant) error {
	if e.Name == "" {
		return errors.New("a user needs a name")
	}
	switch httpapi.Role(e.Role) {
	case httpapi.RoleParty:
		if e.Party == "" {
			return errors.New("a party user names its party (--party)")
		}
	case httpapi.RoleDesk:
		if cov != nil && !cov.CentralDesk && e.Party == "" {
			return errors.New("the covenant has no central desk: a desk user names the party whose desk it is (--party)")
		}
	case httpapi.RoleFG:
		if e.Party != "" {
			return errors.New("an fg user answers to the covenant, not to one party: leave out --party")
		}
	default:
		return fmt.Errorf("role %q: must be desk, fg or party", e.Role)
	}
	if cov != nil && e.Party != "" {
		if _, ok := cov.Party(e.Party); !ok {
			return fmt.Errorf("party %q is not a party of the covenant", e.Party)
		}
	}
	return nil
}

// addToken adds e with a new random token to the file at path and returns
// the token; only its hash is written.
func addToken(path string, e tokenEntry, cov *events.Covenant) (string, error) {
	if err := checkTokenEntry(e, cov); err != nil {
		return "", err
	}
	entries, err := readTokensFile(path)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(entries, func(x tokenEntry) bool { return x.Name == e.Name }) {
		return "", fmt.Errorf("a user named %q is in %s already (revoke it first to replace its token)", e.Name, path)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("couldn't make a token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	h := httpapi.TokenHash(tok)
	e.TokenSHA256 = hex.EncodeToString(h[:])
	if err := writeTokensFile(path, append(entries, e)); err != nil {
		return "", err
	}
	return tok, nil
}

func listTokens(w io.Writer, entries []tokenEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tPARTY")
	for _, e := range entries {
		p := e.Party
		if p == "" {
			p = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Role, p)
	}
	return tw.Flush()
}

// revokeToken removes the user called name.
func revokeToken(path, name string) error {
	entries, err := readTokensFile(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(entries, func(x tokenEntry) bool { return x.Name == name })
	if i < 0 {
		return fmt.Errorf("no user named %q in %s", name, path)
	}
	return writeTokensFile(path, slices.Delete(entries, i, i+1))
}
