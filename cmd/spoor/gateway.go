package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/gateway"
)

type gatewayFlags struct {
	listen       string
	covenants    []string
	admin        string
	keys         []string
	pseudonymKey string
	tokens       string
	natsURL      string
	credentials  string
	auth         natsClientFlags
	receiptWait  time.Duration
	maxBody      int64
	metrics      string
	tlsCert      string
	tlsKey       string
	clientCA     string
	ledgerURL    string
	covenantPoll time.Duration
	form         bool
}

func newGatewayCmd(g *globalFlags) *cobra.Command {
	f := &gatewayFlags{}
	cmd := &cobra.Command{
		Use:   "gateway --covenant FILE --admin KEY|@FILE --key PARTY.key --pseudonym-key FILE (--tokens FILE | --tls-cert FILE --tls-key FILE --client-ca FILE)",
		Short: "Run the HTTP gateway through which an organisation's systems record disclosures",
		Long: `Serve POST /v1/disclosures: a client sends one disclosure as JSON (or many as
JSON Lines) with the subject's BSN or onderwijsnummer and an Idempotency-Key;
the gateway pseudonymises the number (it goes no further), derives the event id
from the key, signs with the party's key, checks the event as the ledger's
ingest will against the covenant, publishes it on NATS and answers with the
ledger's receipt, or 202 and a status URL when the receipt takes longer than
--receipt-wait. Every error is an RFC 9457 application/problem+json naming the
line and field; a request with a bad line publishes nothing. The OpenAPI
document is at /openapi.json.

--covenant takes the signed covenant versions, oldest first (repeat it); the
first must name and be signed by the pinned --admin key, and each next one
must follow it. Clients authenticate with bearer tokens: --tokens is a JSON
array of {"name", "party", "token_sha256"}, each token for one party whose
--key the gateway holds.

Mutual TLS (Digikoppeling): with --tls-cert, --tls-key and --client-ca the
gateway serves HTTPS and requires a client certificate issued under a CA of
the --client-ca bundle (PKIoverheid's in production). The certificate's
subject serialNumber is the organisation's OIN, which the covenant lists per
party (oin); a client publishes only for that party, and --tokens becomes
optional (a token sent beside a certificate must be for the same party).

With --ledger URL (the ledger's HTTP API) the gateway asks the ledger every
--covenant-poll for new covenant versions (GET /v1/covenants), checks each
against the pinned --admin key through the chain, and takes it in force
without a restart.

With --form the gateway also serves a Dutch recording form at /formulier/ for
professionals of an organisation without a system of its own (a disclosure at
an MDO or by phone): they sign in with a token of --tokens (one per person: its
name gives the actor's pseudonymous staff id), pick purpose, legal basis,
categories and recipients from the covenant in force, type the BSN (which goes
no further than the gateway, and is never shown again or logged), and get the
receipt and the covenant's findings in Dutch. The pages run no script; every
form carries a CSRF token.

Each party publishes on a NATS connection of its own;
with --nats-credentials DIR the party's NKey seed is DIR/<party>.nk (what
spoor serve --nats-users writes to DATA/nats-credentials).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGateway(cmd.Context(), g.logger(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8090", "HTTP address to serve on")
	fl.StringArrayVar(&f.covenants, "covenant", nil, "a signed covenant version, oldest first (repeatable, required)")
	fl.StringVar(&f.admin, "admin", "", "the covenant administrator's pinned verifier key, KEY or @FILE (required)")
	fl.StringArrayVar(&f.keys, "key", nil, "a party's key file (spoor keygen --party; repeatable, required)")
	fl.StringVar(&f.pseudonymKey, "pseudonym-key", "", "the pseudonym key K_v file (required)")
	fl.StringVar(&f.tokens, "tokens", "", "the clients' tokens file (required)")
	fl.StringVar(&f.natsURL, "nats", nats.DefaultURL, "NATS server URL")
	fl.StringVar(&f.credentials, "nats-credentials", "", "folder of the parties' NKey seeds, <party>.nk")
	f.auth.add(fl, "CA certificate (PEM) that signed the NATS server's certificate")
	fl.DurationVar(&f.receiptWait, "receipt-wait", gateway.DefaultReceiptWait, "how long a POST waits for the receipts before answering 202")
	fl.Int64Var(&f.maxBody, "max-body", gateway.DefaultMaxBody, "the largest request body in bytes")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on this address (for example 127.0.0.1:9465)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "the gateway's TLS certificate (PEM); with --tls-key it serves HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	fl.StringVar(&f.clientCA, "client-ca", "", "CA bundle (PEM) of the client certificates to require (mutual TLS; the OIN in each subject serialNumber names the party)")
	fl.StringVar(&f.ledgerURL, "ledger", "", "the ledger's HTTP API (for example http://127.0.0.1:8080), to follow new covenant versions")
	fl.BoolVar(&f.form, "form", false, "also serve the Dutch recording form at /formulier/, for professionals who sign in with a token of --tokens")
	fl.DurationVar(&f.covenantPoll, "covenant-poll", gateway.DefaultCovenantPoll, "how often to ask --ledger for new covenant versions")
	for _, n := range []string{"covenant", "admin", "key", "pseudonym-key"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func runGateway(ctx context.Context, log *slog.Logger, f *gatewayFlags) error {
	admin, err := readKeyArg(f.admin)
	if err != nil {
		return fmt.Errorf("--admin: %w", err)
	}
	var signed [][]byte
	for _, p := range f.covenants {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--covenant: %w", err)
		}
		signed = append(signed, b)
	}
	chain, err := gateway.LoadCovenantChain(signed, admin)
	if err != nil {
		return err
	}
	subject, err := events.LoadSubjectKey(f.pseudonymKey)
	if err != nil {
		return err
	}
	var clients map[[32]byte]gateway.Client
	switch {
	case f.tokens != "":
		if clients, err = gateway.LoadTokens(f.tokens); err != nil {
			return err
		}
	case f.clientCA == "":
		return errors.New("give --tokens, or --client-ca to require client certificates (or both)")
	}
	if f.form && len(clients) == 0 {
		return errors.New("--form needs --tokens: professionals sign in to the form with a token")
	}
	var tlsCfg *tls.Config
	switch {
	case f.clientCA != "" && (f.tlsCert == "" || f.tlsKey == ""):
		return errors.New("--client-ca needs --tls-cert and --tls-key: mutual TLS is TLS")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return errors.New("give --tls-cert and --tls-key together")
	case f.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f.clientCA != "" {
			ca, err := os.ReadFile(f.clientCA)
			if err != nil {
				return fmt.Errorf("--client-ca: %w", err)
			}
			if tlsCfg, err = gateway.MutualTLSConfig(cert, ca); err != nil {
				return fmt.Errorf("--client-ca %s: %w", f.clientCA, err)
			}
		}
	}
	if f.credentials != "" && (f.auth.nkey != "" || f.auth.creds != "" || f.auth.user != "") {
		return errors.New("give --nats-credentials or one NATS credential flag, not both")
	}
	base, err := f.auth.options()
	if err != nil {
		return err
	}
	var parties []gateway.Party
	for _, kp := range f.keys {
		key, err := events.LoadPartyKey(kp)
		if err != nil {
			return err
		}
		opts := append([]nats.Option{}, base...)
		opts = append(opts, nats.Name("spoor-gateway-"+key.Party), nats.CustomInboxPrefix(natsbus.InboxPrefix(key.Party)),
			nats.MaxReconnects(-1))
		if f.credentials != "" {
			o, err := nats.NkeyOptionFromSeed(filepath.Join(f.credentials, key.Party+".nk"))
			if err != nil {
				return fmt.Errorf("--nats-credentials: party %s: %w", key.Party, err)
			}
			opts = append(opts, o)
		}
		nc, err := nats.Connect(f.natsURL, opts...)
		if err != nil {
			return fmt.Errorf("couldn't connect to NATS at %s for party %s: %w", redactURLs(f.natsURL), key.Party, err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		parties = append(parties, gateway.Party{Key: key, JS: js})
	}
	gw, err := gateway.New(gateway.Config{
		Chain: chain, SubjectKey: subject, Parties: parties, Clients: clients, RequireClientCert: f.clientCA != "",
		ReceiptWait: f.receiptWait, MaxBody: f.maxBody, Logger: log, Form: f.form,
	})
	if err != nil {
		return err
	}
	if f.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(gw.Metrics()...)
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("couldn't listen for metrics on %s: %w", f.metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(ln) }()
		defer msrv.Close()
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", f.listen, err)
	}
	if f.ledgerURL != "" {
		fctx, stopFollow := context.WithCancel(ctx)
		defer stopFollow()
		hc := &http.Client{Timeout: 30 * time.Second}
		go gw.FollowCovenants(fctx, hc, strings.TrimRight(f.ledgerURL, "/"), f.covenantPoll)
	}
	srv := &http.Server{Handler: gw.Handler(), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: f.receiptWait + time.Minute, IdleTimeout: 2 * time.Minute}
	log.Info("gateway listening", "addr", ln.Addr().String(), "parties", len(parties), "clients", len(clients),
		"covenant_version", chain.Latest().Covenant.Version, "origin", chain.Latest().Covenant.Origin,
		"tls", tlsCfg != nil, "client_certificates", f.clientCA != "")
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway stopped: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.receiptWait+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("couldn't stop the gateway cleanly: %w", err)
	}
	return nil
}
