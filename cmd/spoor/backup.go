package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

func newBackupCmd(g *globalFlags) *cobra.Command {
	var data, out string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out DIR2",
		Short: "Copy a stopped ledger's store consistently (a Pebble checkpoint) into DIR2/ledger",
		Long: `Copy the Pebble store of a stopped ledger (or a stopped standby) into
DIR2/ledger, as a consistent checkpoint: DIR2 can be the data folder of a
restored ledger or of a new standby, which then applies SPOOR_LOG from the
copy's position on (docs/operations.md, sections 4 and 8).

A running ledger backs itself up: spoor serve --backup-dir DIR writes the
same copy every --backup-every (default 24h) into DIR/spoor-backup-<time>,
keeping the newest --backup-keep.

Only the store is copied. The data keys (DIR/datakeys) are backed up on their
own, shorter rotation, and the log and cosigner keys once; see
docs/operations.md, section 4. Check the copy with spoor audit --data DIR2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" || out == "" {
				return errors.New("give --data and --out")
			}
			dst := datadir.Dir(out).Ledger()
			if _, err := os.Stat(dst); err == nil {
				return fmt.Errorf("%s exists already; give an empty --out", dst)
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("couldn't create %s: %w", out, err)
			}
			s, err := pebblestore.Open(datadir.Dir(data).Ledger(), pebblestore.Config{Logger: g.logger()})
			if err != nil {
				return fmt.Errorf("couldn't open the store (is the ledger still running?): %w", err)
			}
			defer s.Close()
			if err := s.Checkpoint(dst); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "store copied to %s\n", dst)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data folder of the stopped ledger")
	cmd.Flags().StringVar(&out, "out", "", "folder to copy the store into (as OUT/ledger)")
	return cmd
}
