// Package natsserver starts the NATS server with JetStream that Spoor embeds:
// the one spoor serve runs by default, the one the bench measures, and the
// ones tests run (through internal/natstest). One place sets the options
// they share (no signal handlers, no server log, 1 MiB max_payload), so the
// bench and the tests meet the server the ledger runs.
//
// Data flows in one direction: the operator's users file (users.go) names
// each party's public NKey; Start turns those users into the server's NKey
// users with natsbus.PartyPermissions, gives the ledger an in-process user
// with every right (a key pair made afresh at each start, whose seed never
// leaves memory), and sets TLS on the listener. Organisations publish to the
// server over TCP; the ledger connects in-process (Server.InProcessOptions).
package natsserver

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/spoor-ledger/spoor/events/natsbus"
)

// ErrNotReady means the server did not accept connections in time: most
// often its port is in use.
var ErrNotReady = errors.New("the embedded NATS server did not start")

// readyTimeout bounds how long Start waits for the server to accept
// connections; a loaded machine may need a few seconds.
const readyTimeout = 15 * time.Second

// Config says how to run the embedded server. The zero value runs a
// JetStream server named "spoor-embedded" on a free loopback port with its
// store in a temporary folder of nats-server's choosing, without users or
// TLS.
type Config struct {
	// Name is the server's name (default "spoor-embedded").
	Name string
	// Host and Port are the client listener (default 127.0.0.1 and a free
	// port; Port -1 also picks a free port).
	Host string
	Port int
	// StoreDir is JetStream's file store (default: nats-server's temporary
	// folder).
	StoreDir string
	// MaxConn bounds client connections; connections beyond it are refused
	// with an error (default: nats-server's, 64k).
	MaxConn int
	// AuthTimeout is how long a client may take to authenticate before it
	// is dropped (default: nats-server's).
	AuthTimeout time.Duration
	// Users are the parties' NATS users, each admitted with
	// natsbus.PartyPermissions. Nil means no authentication (the
	// loopback-only demo default); non-nil also makes the ledger's own
	// in-process user.
	Users []User
	// TLSCert and TLSKey are the listener's certificate; TLSCA, if set,
	// makes it require client certificates signed by that CA. Give both of
	// TLSCert and TLSKey, or none of the three.
	TLSCert, TLSKey, TLSCA string
	// Configure, if set, changes the options last (tests set accounts or a
	// fixed port with it).
	Configure func(*server.Options)
}

// Server is a running embedded server.
type Server struct {
	*server.Server
	// ledger is the ledger's own key pair when the server requires users.
	ledger nkeys.KeyPair
}

// Start starts the server and waits until it accepts connections. An error
// that wraps ErrNotReady means it did not within 15 seconds.
func Start(cfg Config) (*Server, error) {
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 1 << 20,
	}
	if opts.ServerName == "" {
		opts.ServerName = "spoor-embedded"
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if cfg.MaxConn != 0 {
		opts.MaxConn = cfg.MaxConn
	}
	if cfg.AuthTimeout != 0 {
		opts.AuthTimeout = cfg.AuthTimeout.Seconds()
	}
	s := &Server{}
	if err := s.configure(opts, &cfg); err != nil {
		return nil, err
	}
	if cfg.Configure != nil {
		cfg.Configure(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("couldn't configure the embedded NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		return nil, ErrNotReady
	}
	s.Server = ns
	return s, nil
}

// configure sets the users and TLS of the server's options.
func (s *Server) configure(o *server.Options, cfg *Config) error {
	if cfg.Users != nil {
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
		for _, u := range cfg.Users {
			perms := natsbus.PartyPermissions(u.Party)
			o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: perms.Publish},
				Subscribe: &server.SubjectPermission{Allow: perms.Subscribe},
			}})
		}
	}
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "" && cfg.TLSCA == "":
		return nil
	case cfg.TLSCert == "" || cfg.TLSKey == "":
		return errors.New("the embedded NATS server's TLS needs both --nats-tls-cert and --nats-tls-key")
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CaFile: cfg.TLSCA, Verify: cfg.TLSCA != ""})
	if err != nil {
		return fmt.Errorf("the embedded NATS server's TLS: %w", err)
	}
	o.TLS, o.TLSConfig, o.TLSVerify = true, tc, cfg.TLSCA != ""
	o.TLSTimeout = 2
	return nil
}

// InProcessOptions are the options of the ledger's own connection: in
// process, where the server requires no TLS, authenticated by the ledger's
// key when the server requires users. Dial the server's ClientURL with the
// scheme nats://.
func (s *Server) InProcessOptions() []nats.Option {
	opts := []nats.Option{nats.InProcessServer(s.Server)}
	if s.ledger == nil {
		return opts
	}
	pub, _ := s.ledger.PublicKey()
	return append(opts, nats.Nkey(pub, s.ledger.Sign))
}

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}

// IsLoopback reports whether a listen address only accepts connections
// from this machine.
func IsLoopback(listen string) bool {
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
