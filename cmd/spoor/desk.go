package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/spoor-ledger/spoor/desk"
	"github.com/spoor-ledger/spoor/internal/datadir"
)

func newDeskCmd(g *globalFlags) *cobra.Command {
	f := &inzageFlags{}
	var vk reportKeys
	var listen, users, tlsCert, tlsKey string
	var hosts []string
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "desk [--listen 127.0.0.1:8090] --users FILE --url LEDGER --subject-key K",
		Short: "The privacy desk's own screen: register and release inzageverzoeken in the browser",
		Long: `spoor desk serves the privacy desk's pages (in Dutch) on the desk's own machine.
Desk users sign in with a password and a code from an authenticator app (TOTP),
register an inzageverzoek (the BSN is typed into a form, checked with the
elfproef and turned into pseudonyms here: the ledger never receives it), and a
second desk user releases the answer. The answer and its report can be
downloaded again later.

Add desk users first with 'spoor desk adduser'. On the demo covenant:

  spoor desk adduser --data DIR --name desk-1 < password.txt
  spoor desk adduser --data DIR --name desk-2 < password2.txt
  spoor desk --data DIR`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.logger()
			keys, err := f.keys()
			if err != nil {
				return err
			}
			if users == "" && f.data != "" {
				users = datadir.Dir(f.data).DeskUsers()
			}
			if users == "" {
				return errors.New("give the desk users file with --users (made by spoor desk adduser)")
			}
			if f.data != "" {
				vk.defaults(f.data)
			}
			var pinned [3]string
			for i, a := range []string{vk.vkey, vk.cosigner, vk.admin} {
				if a == "" {
					continue
				}
				if pinned[i], err = readKeyArg(a); err != nil {
					return err
				}
			}
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("couldn't listen on %s: %w", listen, err)
			}
			d, err := desk.New(desk.Config{LedgerURL: f.url, UsersFile: users, SubjectKeys: keys,
				LogVkey: pinned[0], CosignerVkey: pinned[1], AdminVkey: pinned[2],
				Hosts: append(desk.HostsFor(ln.Addr().String()), hosts...), TLS: tlsCert != "", IdleTimeout: idle, Logger: log})
			if err != nil {
				ln.Close()
				return err
			}
			srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
				WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
			scheme := "http"
			if tlsCert != "" {
				scheme = "https"
			}
			log.Info("desk serving", "addr", scheme+"://"+ln.Addr().String()+"/", "ledger", f.url, "users", users)
			errc := make(chan error, 1)
			go func() {
				if tlsCert != "" {
					errc <- srv.ServeTLS(ln, tlsCert, tlsKey)
				} else {
					errc <- srv.Serve(ln)
				}
			}()
			select {
			case err := <-errc:
				return fmt.Errorf("desk stopped: %w", err)
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("couldn't stop the desk: %w", err)
			}
			log.Info("desk stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&f.url, "url", "http://127.0.0.1:8080", "the ledger's HTTP address")
	cmd.Flags().StringVar(&f.data, "data", "", "demo: take the pseudonym key, the pinned keys and the users file from this ledger data folder")
	cmd.Flags().StringArrayVar(&f.subjectKeys, "subject-key", nil, "pseudonym key file(s) K_v; a request looks under each (repeatable)")
	vk.add(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address of the desk's pages (keep it on loopback, or use --tls-cert)")
	cmd.Flags().StringVar(&users, "users", "", "the desk users file (spoor desk adduser)")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "another Host name the desk answers to, e.g. balie.example:8090 (repeatable)")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "serve over TLS with this certificate (PEM)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "the certificate's private key (PEM)")
	cmd.Flags().DurationVar(&idle, "idle-timeout", 15*time.Minute, "sign a desk user out after this long without activity")
	cmd.AddCommand(newDeskAddUserCmd(), newDeskCodeCmd())
	return cmd
}

func newDeskAddUserCmd() *cobra.Command {
	var users, name, token, data string
	cmd := &cobra.Command{
		Use:   "adduser --users FILE --name NAME --token TOKEN|@FILE < password",
		Short: "Add a desk user: a password (read from standard input) and a new TOTP secret",
		Long: `spoor desk adduser adds a desk user to the users file. The password is read
from standard input (or a prompt, without echo), never from the command line.
It prints the new TOTP secret once, as text and as an otpauth:// URI, to put in
the desk user's authenticator app. The users file keeps the password as an
Argon2id hash, and the TOTP secret and the ledger token sealed under the
password.

On the demo covenant, --data DIR takes the demo desk user's token
(DIR/demo-keys/NAME.token) and writes DIR/desk-users.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if users == "" && data != "" {
				users = datadir.Dir(data).DeskUsers()
			}
			if users == "" {
				return errors.New("give the users file with --users (or --data DIR on the demo covenant)")
			}
			tok := token
			var err error
			switch {
			case tok != "":
				tok, err = readKeyArg(tok)
			case data != "":
				tok, err = readKeyArg("@" + datadir.Dir(data).DemoDeskToken(name))
			default:
				err = errors.New("give the desk user's ledger token with --token (or --data DIR on the demo covenant)")
			}
			if err != nil {
				return err
			}
			password, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			secret, err := desk.AddUser(users, name, password, tok)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "added desk user %s to %s\n", name, users)
			fmt.Fprintf(out, "TOTP secret (put it in the authenticator app; shown only now): %s\n", desk.TOTPSecretText(secret))
			fmt.Fprintf(out, "%s\n", desk.OTPAuthURI("Spoor privacybalie", name, secret))
			return nil
		},
	}
	cmd.Flags().StringVar(&users, "users", "", "the desk users file (made if missing)")
	cmd.Flags().StringVar(&name, "name", "", "the desk user's name (required)")
	cmd.Flags().StringVar(&token, "token", "", "the desk user's bearer token for the ledger (TOKEN or @FILE)")
	cmd.Flags().StringVar(&data, "data", "", "demo: the demo desk user's token and the users file from this ledger data folder")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// readPassword reads a password: twice without echo from a terminal, else
// the first line of in.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if fh, ok := in.(*os.File); ok && term.IsTerminal(int(fh.Fd())) {
		var got [2]string
		for i, p := range []string{"Password: ", "Password again: "} {
			fmt.Fprint(prompt, p)
			b, err := term.ReadPassword(int(fh.Fd()))
			fmt.Fprintln(prompt)
			if err != nil {
				return "", fmt.Errorf("couldn't read the password: %w", err)
			}
			got[i] = string(b)
		}
		if got[0] != got[1] {
			return "", errors.New("the two passwords differ")
		}
		return got[0], nil
	}
	sc := bufio.NewScanner(io.LimitReader(in, 4096))
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("couldn't read the password from standard input: %w", err)
		}
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}

func newDeskCodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "code < secret",
		Short: "Print the current TOTP code of a secret (to try the demo without an authenticator app)",
		Long: `spoor desk code reads a TOTP secret (base32, as adduser printed it) from
standard input and prints its current six-digit code: what an authenticator app
shows. For trying the demo; a desk user keeps the secret in their app only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			secret, err := desk.ParseTOTPSecret(line)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), desk.TOTP(secret, time.Now()))
			return nil
		},
	}
}
