package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
)

func pubB64(k *events.PartyKey) string { return base64.StdEncoding.EncodeToString(k.Public()) }

func newCovenantCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "covenant",
		Short: "Sign and show versions of the covenant",
		Long: `The covenant (covenant.yaml) holds the parties and their keys, the vocabularies
with Dutch labels, the rules and the retention periods. Each version is signed
by the administrator key named in the version before it (version 1: by the key
it names itself) and appended to the log by the ledger before it takes effect.`,
	}
	cmd.AddCommand(newCovenantSignCmd(), newCovenantShowCmd(), newCovenantNextCmd(), newCovenantVRFKeygenCmd())
	return cmd
}

func newCovenantSignCmd() *cobra.Command {
	var key, out, previous string
	cmd := &cobra.Command{
		Use:   "sign covenant.yaml --key admin.key -o covenant.signed [--previous covenant-v1.signed]",
		Short: "Sign a covenant version with the administrator key",
		Long: `Validate covenant.yaml and sign it with the administrator's signing key.

Version 1 must be signed by the administrator key it names itself. A later
version must be signed by the key named in the version before it; give that
version with --previous to check the chain (version, previous hash, origin,
signer) before you hand the file to the ledger.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			yml, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("couldn't read the covenant: %w", err)
			}
			skey, err := readKeyArg("@" + key)
			if err != nil {
				return err
			}
			signed, err := events.SignCovenant(yml, skey)
			if err != nil {
				return fmt.Errorf("refusing to sign %s: %w", args[0], err)
			}
			sc, err := events.ParseSignedCovenant(signed)
			if err != nil {
				return err
			}
			if previous != "" {
				if err := checkAgainstPrevious(sc, previous); err != nil {
					return err
				}
			} else if sc.Covenant.Version > 1 {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: without --previous the chain was not checked; the ledger checks it when it appends this version")
			}
			if err := os.WriteFile(out, signed, 0o644); err != nil {
				return fmt.Errorf("couldn't write %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed covenant version %d of %s -> %s (sha256 %s)\n",
				sc.Covenant.Version, sc.Covenant.Origin, out, sc.Hash())
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "administrator signing key file (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "signed covenant file to write (required)")
	cmd.Flags().StringVar(&previous, "previous", "", "the previous signed version, to check the chain")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// checkAgainstPrevious checks that sc follows the signed version in path.
// Only version 1 can start a chain, so a previous file that is not version
// 1 is taken as the latest of a chain whose earlier links the ledger has.
func checkAgainstPrevious(sc *events.SignedCovenant, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("couldn't read the previous version: %w", err)
	}
	prev, err := events.ParseSignedCovenant(b)
	if err != nil {
		return fmt.Errorf("previous version %s: %w", path, err)
	}
	if prev.Covenant.Version != 1 {
		return errors.New("--previous must be version 1 for now; check later versions by appending them to a ledger")
	}
	chain, err := events.NewChain(prev, "")
	if err != nil {
		return err
	}
	if err := chain.Append(sc); err != nil {
		return fmt.Errorf("this version does not follow %s: %w", path, err)
	}
	return nil
}

func newCovenantShowCmd() *cobra.Command {
	var admin string
	cmd := &cobra.Command{
		Use:   "show covenant.signed [--admin KEY|@FILE]",
		Short: "Check a signed covenant version and print what it says",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("couldn't read: %w", err)
			}
			sc, err := events.ParseSignedCovenant(b)
			if err != nil {
				return fmt.Errorf("refusing %s: %w", args[0], err)
			}
			pinned := ""
			if admin != "" {
				vkey, err := readKeyArg(admin)
				if err != nil {
					return err
				}
				if sc.Covenant.Version != 1 {
					return errors.New("--admin pins the key of version 1; later versions are checked through their chain")
				}
				if _, err := events.NewChain(sc, vkey); err != nil {
					return err
				}
				pinned = vkey
			}
			showCovenant(cmd.OutOrStdout(), sc, pinned)
			return nil
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "", "pin the administrator's verifier key (version 1)")
	return cmd
}

// showCovenant prints what a signed covenant version says. pinned is the
// administrator verifier key it was checked against, or "" when none was
// pinned: a version 1 then only proves that whoever holds the key it names
// signed it, which anyone can do with a key of their own, and the signature
// line says so.
func showCovenant(w io.Writer, sc *events.SignedCovenant, pinned string) {
	c := sc.Covenant
	fmt.Fprintf(w, "%s\nversion %d, origin %s, in force from %s\n", c.Name, c.Version, c.Origin, c.EffectiveFrom.Format("2006-01-02"))
	fmt.Fprintf(w, "administrator: %s (%s)\n", c.Administrator.Name, strings.SplitN(c.Administrator.Key, "+", 3)[0])
	switch {
	case c.Version == 1 && pinned != "":
		fmt.Fprintf(w, "signature: valid, by the pinned administrator key %s\n", verifierKeyName(pinned))
	case c.Version == 1:
		fmt.Fprintln(w, "signature: NOT CHECKED against a pinned administrator key; it only matches the key this version names itself (pin the key with --admin KEY|@FILE)")
	default:
		fmt.Fprintln(w, "signature: to be checked against the previous version's administrator key")
	}
	fmt.Fprintf(w, "sha256: %s\n\n", sc.Hash())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTY\tKIND\tOIN\tNAME\tKEYS")
	for _, p := range c.Parties {
		var ks []string
		for _, k := range p.Keys {
			s := "from " + k.ValidFrom.Format("2006-01-02")
			if k.ValidUntil != nil {
				s += " until " + k.ValidUntil.Format("2006-01-02")
			}
			if k.Revoked {
				s += " REVOKED"
			}
			ks = append(ks, s)
		}
		oin := p.OIN
		if oin == "" {
			oin = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Kind, oin, p.Name, strings.Join(ks, "; "))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d data categories, %d purposes, late recording after %d hours, retention %d days by default\n",
		len(c.Vocabulary.Categories), len(c.Vocabulary.Purposes), c.Rules.LateRecordingHours, c.Retention.DefaultDays)
}

// verifierKeyName is a note verifier key's name and key hash
// ("name+hash"), without the key itself.
func verifierKeyName(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) < 2 {
		return parts[0]
	}
	return parts[0] + "+" + parts[1]
}
