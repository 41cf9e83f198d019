package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/spoor-ledger/spoor/dashboard"
	"github.com/spoor-ledger/spoor/desk"
)

func newDashboardCmd(g *globalFlags) *cobra.Command {
	f := &auditFlags{}
	var listen, password, dataDir string
	var follow time.Duration
	var hosts []string
	var interval, idle time.Duration
	cmd := &cobra.Command{
		Use:   "dashboard --url URL --token TOKEN|@FILE --vkey KEY|@FILE --cosigner-vkey KEY|@FILE --password FILE --data DIR",
		Short: "The FG's console: the FG's own audit of the ledger, as Dutch pages on loopback",
		Long: `spoor dashboard keeps the FG's own verified copy of a running ledger in --data
(files 0600): every --follow it reads the new checkpoints and entries over the
ledger's HTTP API with the FG's token, checks them against the keys the FG pinned
(signatures, extension of the copy's tree, leaves against the tiles) and applies
every tombstone (an erased envelope is gone from the copy too). It audits the copy
whenever it grew (at most every --interval) and serves what it verified as Dutch
pages on loopback: health and alarms, tables per month, every disclosure that broke
a rule (filterable, each with a verified inclusion proof), anomalies, answers with
withholdings and their grounds, erasures, CSV exports and the audit report.

At the first start (no --password file yet) it asks for a password, of at least
12 characters, on the terminal and keeps an Argon2id hash of it in that file (0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.logger()
			if f.url == "" || f.token == "" || password == "" || dataDir == "" {
				return errors.New("spoor dashboard needs --url, --token, --password and --data")
			}
			keys, admin, err := f.pinnedKeys()
			if err != nil {
				return err
			}
			tok, err := readKeyArg(f.token)
			if err != nil {
				return fmt.Errorf("--token: %w", err)
			}
			if _, err := os.Stat(password); errors.Is(err, fs.ErrNotExist) {
				pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if err := dashboard.SetPassword(password, pw); err != nil {
					return err
				}
				log.Info("dashboard password set", "file", password)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("couldn't listen on %s: %w", listen, err)
			}
			d, err := dashboard.New(dashboard.Config{LedgerURL: f.url, Token: tok, Keys: keys, AdminVkey: admin,
				HTTPClient: &http.Client{Timeout: f.httpTimeout}, PasswordFile: password,
				Hosts: append(desk.HostsFor(ln.Addr().String()), hosts...), Interval: interval, IdleTimeout: idle, Logger: log,
				DataDir: dataDir, FollowInterval: follow})
			if err != nil {
				ln.Close()
				return err
			}
			srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
				WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
			log.Info("dashboard serving", "addr", "http://"+ln.Addr().String()+"/", "ledger", f.url)
			eg, ctx := errgroup.WithContext(cmd.Context())
			eg.Go(func() error { return d.Run(ctx) })
			eg.Go(func() error {
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					return fmt.Errorf("dashboard stopped: %w", err)
				}
				return nil
			})
			eg.Go(func() error {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return srv.Shutdown(sctx)
			})
			if err := eg.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			d.Close()
			log.Info("dashboard stopped")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "the ledger's HTTP address")
	fl.StringVar(&f.token, "token", "", "the FG's bearer token (TOKEN or @FILE)")
	fl.StringVar(&f.vkey, "vkey", "", "pinned log verifier key (KEY or @FILE)")
	fl.StringVar(&f.cosVkey, "cosigner-vkey", "", "pinned cosigner verifier key (KEY or @FILE)")
	fl.StringVar(&f.admin, "admin", "", "pinned covenant administrator verifier key (KEY or @FILE)")
	fl.DurationVar(&f.httpTimeout, "http-timeout", 5*time.Minute, "timeout of one HTTP request to the ledger")
	fl.StringVar(&password, "password", "", "the console's password file (made at the first start)")
	fl.StringVar(&listen, "listen", "127.0.0.1:8091", "address of the console's pages (keep it on loopback)")
	fl.StringArrayVar(&hosts, "host", nil, "another Host name the console answers to (repeatable)")
	fl.StringVar(&dataDir, "data", "", "the console's folder: its verified copy of the log (0700, files 0600)")
	fl.DurationVar(&follow, "follow", time.Second, "ask the ledger for new checkpoints this often")
	fl.DurationVar(&interval, "interval", 0, "the least time between two full audits of the copy (0: whenever it grew)")
	fl.DurationVar(&idle, "idle-timeout", 15*time.Minute, "sign the FG out after this long without activity")
	return cmd
}
