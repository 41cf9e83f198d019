package main

// The credential and TLS flags of the NATS clients (spoor publish, and
// spoor serve --nats). Who may connect to the embedded server, and the users
// file, are internal/natsserver's.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/spoor-ledger/spoor/internal/datadir"
)

// credentialsDir is where serve writes the seeds it makes for parties.
func credentialsDir(dataDir string) string { return datadir.Dir(dataDir).NATSCredentials() }

// natsClientFlags are the credentials and TLS settings of a NATS client.
// At most one kind of credential is given.
type natsClientFlags struct {
	nkey, creds, user, passwordFile string
	ca, cert, key                   string
}

// add registers the flags; caHelp says what --nats-ca means for the
// command.
func (c *natsClientFlags) add(fl *pflag.FlagSet, caHelp string) {
	fl.StringVar(&c.nkey, "nats-nkey", "", "NATS credential: a user NKey seed file (what spoor serve --nats-users makes for a party)")
	fl.StringVar(&c.creds, "nats-creds", "", "NATS credential: a .creds file (user JWT and seed) of a decentralised NATS deployment")
	fl.StringVar(&c.user, "nats-user", "", "NATS credential: a user name, with --nats-password-file")
	fl.StringVar(&c.passwordFile, "nats-password-file", "", "file holding the password of --nats-user (never on the command line)")
	fl.StringVar(&c.ca, "nats-ca", "", caHelp)
	fl.StringVar(&c.cert, "nats-client-cert", "", "client certificate (PEM) for NATS TLS, when the server requires one")
	fl.StringVar(&c.key, "nats-client-key", "", "private key of --nats-client-cert")
}

// options turns the flags into nats.go options.
func (c *natsClientFlags) options() ([]nats.Option, error) {
	var opts []nats.Option
	given := 0
	for _, v := range []string{c.nkey, c.creds, c.user} {
		if v != "" {
			given++
		}
	}
	if given > 1 {
		return nil, errors.New("give one NATS credential: --nats-nkey, --nats-creds or --nats-user")
	}
	switch {
	case c.nkey != "":
		o, err := nats.NkeyOptionFromSeed(c.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey: %w", err)
		}
		opts = append(opts, o)
	case c.creds != "":
		if _, err := os.Stat(c.creds); err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.creds))
	case c.user != "":
		if c.passwordFile == "" {
			return nil, errors.New("--nats-user needs --nats-password-file")
		}
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-password-file: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.user, strings.TrimSpace(string(b))))
	case c.passwordFile != "":
		return nil, errors.New("--nats-password-file needs --nats-user")
	}
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--nats-ca %s holds no PEM certificate", c.ca)
		}
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if c.cert != "" || c.key != "" {
			cert, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				return nil, fmt.Errorf("--nats-client-cert/--nats-client-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	} else if c.cert != "" || c.key != "" {
		if c.cert == "" || c.key == "" {
			return nil, errors.New("--nats-client-cert and --nats-client-key go together")
		}
		opts = append(opts, nats.ClientCert(c.cert, c.key))
	}
	return opts, nil
}

// redactURLs hides the passwords of a comma-separated list of NATS URLs,
// for log lines and error messages.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
