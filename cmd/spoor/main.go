// Command spoor runs and uses a Spoor ledger: a verifiable audit ledger for
// disclosures of personal data about children between the organisations of
// a regional privacy covenant.
//
// It is thin wiring: flags, files, signals; the work is in events, ledger
// and verifier.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit status for main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "spoor:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "spoor",
		Short: "Spoor: a verifiable audit ledger of disclosures about children",
		Long: `Spoor records every disclosure of personal data about a child between the
organisations of a privacy covenant in a signed, append-only Merkle log, so that
the FG can audit it and a parent's inzageverzoek is answered with proof.

Start a ledger on the embedded default (NATS, Pebble and the log in one process):

  spoor serve --data ./data

then try it with synthetic traffic:

  spoor simulate --data ./data --events 1000`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		newServeCmd(g),
		newKeygenCmd(g),
		newPublishCmd(g),
		newPseudonymCmd(),
		newTokensCmd(),
		newSimulateCmd(g),
		newCovenantCmd(g),
		newInzageCmd(g),
		newDeskCmd(g),
		newErasureCmd(),
		newWitnessCmd(g),
		newRetentionCmd(g),
		newAuditCmd(g), newDashboardCmd(g), newMonitorCmd(g), newGatewayCmd(g),
		newVerifyCmd(g),
		newVerifyPageCmd(),
		newProofCmd(),
		newBenchCmd(g),
		newBackupCmd(g),
	)
	return root
}

func (g *globalFlags) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
