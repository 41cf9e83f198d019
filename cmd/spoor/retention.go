package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
)

func newRetentionCmd(g *globalFlags) *cobra.Command {
	var data string
	var dry, asJSON bool
	cmd := &cobra.Command{
		Use:   "retention --data DIR [--dry-run] [--json]",
		Short: "Run (or preview) the retention job on a stopped ledger",
		Long: `Find every stored disclosure past its retention period (counted from when the
ledger recorded it, by the categories' periods in the covenant in force) and
erase it: a tombstone entry in the log (which leaf, which rule; never whom it
was about) and the envelope and its indices deleted in the same commit. Then
purge erasure notices past their term, compact the store so erased data leaves
its files, and destroy data keys whose envelopes are all gone.

'spoor serve' runs this job itself (--retention-interval); this command is for
a stopped ledger and for a preview with --dry-run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.logger()
			ctx := cmd.Context()
			keys, err := loadLogKeysOnly(data)
			if err != nil {
				return err
			}
			store, err := pebblestore.Open(datadir.Dir(data).Ledger(), pebblestore.Config{Logger: log})
			if err != nil {
				return fmt.Errorf("%w (is 'spoor serve' running on %s? stop it first)", err, data)
			}
			defer store.Close()
			dk, err := ledger.OpenDataKeys(datadir.Dir(data).DataKeys())
			if err != nil {
				return err
			}
			// The erasures update the subject index like spoor serve's
			// (a tombstone the index missed could not be caught up):
			// with its key, when the log has one.
			var indexVRF *subjectindex.VRFKey
			if _, err := os.Stat(datadir.Dir(data).IndexVRFKey()); err == nil {
				if indexVRF, err = subjectindex.OpenVRFKey(datadir.Dir(data).IndexVRFKey()); err != nil {
					return err
				}
			}
			l, err := ledger.Open(ctx, ledger.Config{Store: store, Signer: keys.signer, Keys: keys.verifiers,
				DataKeys: dk, IdleCosign: -1, Logger: log, IndexVRF: indexVRF})
			if err != nil {
				return err
			}
			defer l.Close()
			bar := newBar(1, "retention", cmd.ErrOrStderr())
			rep, err := l.RunRetention(ctx, dry, func(phase string, done, total int) {
				bar.ChangeMax(total)
				bar.Describe(phase)
				_ = bar.Set(done)
			})
			_ = bar.Finish()
			if err != nil {
				return err
			}
			return printRetention(cmd, rep, asJSON)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the ledger's data folder (required)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only count what would be erased")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func printRetention(cmd *cobra.Command, rep *ledger.RetentionReport, asJSON bool) error {
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	verb := "erased"
	if rep.DryRun {
		verb = "would erase"
	}
	fmt.Fprintf(w, "checked %d disclosures; %s %d (tombstoned %d); erasure notices purged %d; data keys destroyed %d\n",
		rep.Checked, verb, rep.Expired, rep.Tombstoned, rep.NoticesPurged, len(rep.KeysDestroyed))
	rules := make([]string, 0, len(rep.ByRule))
	for r := range rep.ByRule {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	for _, r := range rules {
		fmt.Fprintf(w, "  %-40s %d\n", r, rep.ByRule[r])
	}
	return nil
}

// loadLogKeysOnly loads the keys of an existing data folder (never creates).
func loadLogKeysOnly(dir string) (*logKeys, error) {
	vk, err := readKeyArg("@" + datadir.Dir(dir).LogVkey())
	if err != nil {
		return nil, fmt.Errorf("%s is not a ledger data folder: %w", dir, err)
	}
	name, _, _ := cutPlus(vk)
	return ensureLogKeys(dir, name)
}

func cutPlus(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '+' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
