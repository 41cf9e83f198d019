package main

// Who may do what on the bus: the NATS users of the embedded server (one
// per covenant party, with natsbus.PartyPermissions, and the ledger with
// every right), TLS on its listener, and the credential and TLS flags of
// the NATS clients (spoor publish, and spoor serve --nats).
//
// A party's credential is an NKey: an Ed25519 key pair of which the server
// knows only the public half (the users file), and the party keeps the seed
// (a file it passes to spoor publish --nats-nkey, or to nats.go's
// NkeyOptionFromSeed). On first start with --nats-users, serve makes a seed
// for every party that has no user yet and writes it to
// DATA/nats-credentials/<party>.nk (0600): the operator hands each party its
// own file over a secure channel and then deletes it from the ledger's
// host. A party may instead make its own key pair (nk -gen user -pubout,
// the NATS nk tool) and send only the public key, which the operator puts
// in the users file.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/durable"
)

// natsUsersFormat names the version of the users file.
const natsUsersFormat = "spoor-nats-users/v1"

// natsUsersFile is the --nats-users file: the public NKey of each party's
// NATS user. It holds no secret.
type natsUsersFile struct {
	Format string      `json:"format"`
	Users  []natsParty `json:"users"`
}

// natsParty is one party's NATS user.
type natsParty struct {
	Party string `json:"party"`
	// NKey is the user's public key (it starts with U).
	NKey string `json:"nkey"`
}

// credentialsDir is where serve writes the seeds it makes for parties.
func credentialsDir(dataDir string) string { return datadir.Dir(dataDir).NATSCredentials() }

// loadNATSUsers reads the users file, creating users (and seed files) for
// every covenant party that has none. It returns the users of the parties
// in the covenant; a user of a party outside it is left out with a
// warning, so the file cannot let in a party the covenant does not.
func loadNATSUsers(path, dataDir string, parties []string, log *slog.Logger) ([]natsParty, error) {
	var file natsUsersFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		file.Format = natsUsersFormat
	case err != nil:
		return nil, fmt.Errorf("couldn't read --nats-users: %w", err)
	default:
		if err := json.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("--nats-users %s: %w", path, err)
		}
		if file.Format != natsUsersFormat {
			return nil, fmt.Errorf("--nats-users %s: format is %q, want %q", path, file.Format, natsUsersFormat)
		}
	}
	have := map[string]bool{}
	for i, u := range file.Users {
		if !events.ValidPartyID(u.Party) || !nkeys.IsValidPublicUserKey(u.NKey) {
			return nil, fmt.Errorf("--nats-users %s: user %d needs a party id and a public user NKey (U...)", path, i)
		}
		if have[u.Party] {
			return nil, fmt.Errorf("--nats-users %s: party %s has two users", path, u.Party)
		}
		have[u.Party] = true
	}
	var made []string
	for _, p := range parties {
		if have[p] {
			continue
		}
		pub, err := writePartySeed(credentialsDir(dataDir), p)
		if err != nil {
			return nil, err
		}
		file.Users = append(file.Users, natsParty{Party: p, NKey: pub})
		made = append(made, p)
	}
	if len(made) > 0 {
		out, err := json.MarshalIndent(file, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := replaceFile(path, append(out, '\n')); err != nil {
			return nil, fmt.Errorf("couldn't write --nats-users: %w", err)
		}
		log.Warn("made NATS users for parties that had none; hand each party its own seed file over a secure channel, then delete it here",
			"parties", len(made), "credentials", credentialsDir(dataDir), "users_file", path)
	}
	var out []natsParty
	for _, u := range file.Users {
		if slices.Contains(parties, u.Party) {
			out = append(out, u)
		} else {
			log.Warn("NATS user of a party outside the covenant is not admitted", "party", u.Party)
		}
	}
	return out, nil
}

// writePartySeed makes a user NKey for party, writes its seed to
// dir/<party>.nk (0600) and returns the public key.
func writePartySeed(dir, party string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("couldn't make a NATS key for %s: %w", party, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	path := filepath.Join(dir, party+".nk")
	// A seed left from an earlier user of the party (one the operator
	// removed from the users file to replace it) is replaced.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("couldn't replace the NATS seed of %s: %w", party, err)
	}
	if err := writeSecretFile(path, append(seed, '\n')); err != nil {
		return "", fmt.Errorf("couldn't write the NATS seed of %s: %w", party, err)
	}
	return pub, nil
}

// embeddedNATSSecurity is who may connect to the embedded server, and how.
type embeddedNATSSecurity struct {
	// users are the parties' NATS users; nil means no authentication (the
	// loopback-only demo default).
	users []natsParty
	// ledger is the ledger's own key pair, made afresh at every start: the
	// ledger connects in-process, so its seed never leaves memory.
	ledger nkeys.KeyPair
	// tlsCert, tlsKey: the listener's certificate; ca, if set, makes it
	// require client certificates signed by that CA.
	tlsCert, tlsKey, ca string
}

// configure sets the users and TLS of the embedded server's options.
func (s *embeddedNATSSecurity) configure(o *server.Options) error {
	if s.users != nil {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return fmt.Errorf("couldn't make the ledger's NATS key: %w", err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return err
		}
		s.ledger = kp
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}} // the ledger: every right
		for _, u := range s.users {
			perms := natsbus.PartyPermissions(u.Party)
			o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: perms.Publish},
				Subscribe: &server.SubjectPermission{Allow: perms.Subscribe},
			}})
		}
	}
	switch {
	case s.tlsCert == "" && s.tlsKey == "" && s.ca == "":
		return nil
	case s.tlsCert == "" || s.tlsKey == "":
		return errors.New("the embedded NATS server's TLS needs both --nats-tls-cert and --nats-tls-key")
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: s.tlsCert, KeyFile: s.tlsKey, CaFile: s.ca, Verify: s.ca != ""})
	if err != nil {
		return fmt.Errorf("the embedded NATS server's TLS: %w", err)
	}
	o.TLS, o.TLSConfig, o.TLSVerify = true, tc, s.ca != ""
	o.TLSTimeout = 2
	return nil
}

// ledgerOptions are the options of the ledger's own in-process connection.
func (s *embeddedNATSSecurity) ledgerOptions() []nats.Option {
	if s.ledger == nil {
		return nil
	}
	pub, _ := s.ledger.PublicKey()
	return []nats.Option{nats.Nkey(pub, s.ledger.Sign)}
}

// isLoopback reports whether a listen address only accepts connections
// from this machine.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

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

// replaceFile writes b to path (0600) through a temporary file and a
// rename, so that a crash leaves the old file or the new one, never half.
func replaceFile(path string, b []byte) error {
	return durable.WriteFile(path, b, 0o600)
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
