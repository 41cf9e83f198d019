package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// deskFlags are the flags of a desk user's command: the ledger, and whose
// credential (--token, or a demo desk user's on the demo covenant).
type deskFlags struct {
	inzageFlags
	user string
}

func (f *deskFlags) add(cmd *cobra.Command, demoUser string) {
	f.inzageFlags.add(cmd)
	cmd.Flags().StringVar(&f.user, "desk-user", demoUser, "demo: which demo desk user's token to take from --data (desk-1, desk-2, ...)")
}

func (f *deskFlags) token() (string, error) { return f.desk(f.user) }

func newErasureCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "erasure",
		Short: "Erase a disclosure on request (AVG art. 17): propose, then a second desk user confirms",
		Long: `An erasure on request takes two desk users of the same scope: one proposes it
(which disclosure, on which legal ground), a second one confirms it, and only
then does the ledger append the tombstone and delete the envelope. Either may
withdraw a proposal; an unconfirmed proposal expires after 7 days. The leaf
index is the disclosure's "index" in an inzage bundle.

The public tombstone names the leaf and the ground, never the desk users; who
proposed and who confirmed is kept for the FG.

On the demo covenant:
  spoor erasure propose --data DIR --leaf N --ground avg-17-1-a   (desk-1)
  spoor erasure confirm ID --data DIR                             (desk-2)`,
	}
	cmd.AddCommand(newErasureProposeCmd(), newErasureDecideCmd("confirm"), newErasureDecideCmd("withdraw"), newErasureListCmd())
	return cmd
}

func newErasureProposeCmd() *cobra.Command {
	f := &deskFlags{}
	var leaf, entry int64
	var ground, bundle string
	cmd := &cobra.Command{
		Use:   "propose (--leaf N | --bundle FILE --entry N) --ground GROUND",
		Short: "Propose to erase one disclosure (a second desk user confirms)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case bundle != "" && leaf >= 0:
				return errors.New("give --leaf or --bundle with --entry, not both")
			case bundle != "":
				var err error
				if leaf, err = bundleLeaf(bundle, entry); err != nil {
					return err
				}
			case leaf < 0:
				return errors.New("give the disclosure's leaf index with --leaf (its index in the inzage bundle), or --bundle FILE --entry N")
			}
			tok, err := f.token()
			if err != nil {
				return err
			}
			var p verifier.ErasureProposal
			req := httpapi.ErasureRequest{LeafIndex: uint64(leaf), Ground: ground}
			if err := deskCall(cmd.Context(), "POST", f.url+"/v1/erasures", tok, req, &p); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.ID)
			fmt.Fprintf(cmd.ErrOrStderr(), "proposed by %s: erase leaf %d (%s) on ground %s (%s); a second desk user confirms it before %s with: spoor erasure confirm %s\n",
				p.ProposedBy, p.LeafIndex, p.Discloser, p.Ground, report.ErasureGroundLabel(p.Ground), p.ExpiresAt.Local().Format(time.DateTime), p.ID)
			return nil
		},
	}
	f.add(cmd, "desk-1")
	cmd.Flags().Int64Var(&leaf, "leaf", -1, "leaf index of the disclosure to erase")
	cmd.Flags().StringVar(&bundle, "bundle", "", "take the disclosure from this inzage bundle (with --entry)")
	cmd.Flags().Int64Var(&entry, "entry", 1, "with --bundle: the N-th disclosure of the bundle, from 1")
	cmd.Flags().StringVar(&ground, "ground", "", "legal ground, e.g. avg-17-1-a (no longer needed) or avg-17-1-d (unlawfully processed) (required)")
	_ = cmd.MarkFlagRequired("ground")
	return cmd
}

// bundleLeaf returns the leaf index of the n-th disclosure (from 1) of an
// inzage bundle. The bundle is only a list to choose from here: the
// ledger decides what the desk may erase.
func bundleLeaf(path string, n int64) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("couldn't read the bundle: %w", err)
	}
	var bundle struct {
		Entries []struct {
			Index uint64 `json:"index"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return 0, fmt.Errorf("%s is not an inzage bundle: %w", path, err)
	}
	if n < 1 || n > int64(len(bundle.Entries)) {
		return 0, fmt.Errorf("--entry %d: the bundle holds %d disclosures (count from 1)", n, len(bundle.Entries))
	}
	return int64(bundle.Entries[n-1].Index), nil
}

func newErasureDecideCmd(verb string) *cobra.Command {
	f := &deskFlags{}
	short := "Confirm a proposed erasure (a desk user other than the proposer): the disclosure is erased"
	if verb == "withdraw" {
		short = "Withdraw a proposed erasure"
	}
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := f.token()
			if err != nil {
				return err
			}
			url := f.url + "/v1/erasures/" + args[0] + "/" + verb
			if verb == "withdraw" {
				var p verifier.ErasureProposal
				if err := deskCall(cmd.Context(), "POST", url, tok, struct{}{}, &p); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "withdrawn by %s: proposal %s (leaf %d)\n", p.DecidedBy, p.ID, p.LeafIndex)
				return nil
			}
			var r httpapi.ErasureResponse
			if err := deskCall(cmd.Context(), "POST", url, tok, struct{}{}, &r); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "erased: leaf %d, tombstone at leaf %d (rule %s)\n", r.ErasedIndex, r.TombstoneIndex, r.RuleID)
			return nil
		},
	}
	f.add(cmd, "desk-2")
	return cmd
}

func newErasureListCmd() *cobra.Command {
	f := &deskFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the erasure proposals of the desk's scope (the FG's token: all of them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := f.token()
			if err != nil {
				return err
			}
			var list verifier.ErasureList
			if err := deskCall(cmd.Context(), "GET", f.url+"/v1/erasures", tok, nil, &list); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tLEAF\tPARTY\tGROUND\tSTATUS\tPROPOSED BY\tDECIDED BY")
			for _, p := range list.Proposals {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.LeafIndex, p.Discloser, p.Ground, p.Status, p.ProposedBy, p.DecidedBy)
			}
			if len(list.Proposals) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no erasure proposals")
				return tw.Flush()
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			printGroundLegend(cmd.OutOrStdout(), list.Proposals)
			return nil
		},
	}
	f.add(cmd, "desk-1")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the proposals as JSON")
	return cmd
}

// printGroundLegend says in Dutch what each ground in the table means: the
// table keeps the short ids (they are the tombstone's rule), and the desk
// user reading it gets the words, once per ground shown.
func printGroundLegend(w io.Writer, proposals []verifier.ErasureProposal) {
	shown := map[string]bool{}
	for _, p := range proposals {
		shown[p.Ground] = true
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "GROUND")
	for _, g := range verifier.ErasureGrounds() {
		if shown[g] {
			fmt.Fprintf(w, "  %s  %s\n", g, report.ErasureGroundLabel(g))
			delete(shown, g)
		}
	}
	// A ground the server holds that this build does not know (a newer
	// server) is listed as itself rather than left out.
	rest := make([]string, 0, len(shown))
	for g := range shown {
		rest = append(rest, g)
	}
	slices.Sort(rest)
	for _, g := range rest {
		fmt.Fprintf(w, "  %s\n", g)
	}
}
