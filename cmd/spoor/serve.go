package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/internal/natsserver"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/ingest"
	"github.com/spoor-ledger/spoor/ledger/notify"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/webhook"
)

type serveFlags struct {
	data       string
	memLimit   int
	covenant   string
	admin      string
	httpAddr   string
	natsListen string
	natsURL    string
	replicas   int
	maxBatch   int
	batchAge   time.Duration
	idleCosign time.Duration
	retention  time.Duration
	noEncrypt  bool
	// noIndex turns the subject index off (issue 22): no index heads.
	noIndex bool
	// Online backups (backup.go).
	backupDir   string
	backupEvery time.Duration
	backupKeep  int
	demoName    string
	tokens      string
	// Who may do what (docs/security.md).
	natsUsers   string
	natsTLSCert string
	natsTLSKey  string
	tlsCert     string
	tlsKey      string
	natsClient  natsClientFlags
	// Replication over the --nats cluster (serve_replica.go).
	repl replicaFlags
	// The Merkle log backend: --log, --trillian, --tree-id (serve_merkle.go).
	merkle merkleFlags
	// Witnessing: --witness-* (serve_witness.go).
	witness witnessFlags
	// Notifications by webhook: --notify-* (serve_notify.go).
	notify notifyFlags
	// Timeouts and connection limits (limits.go).
	limits limitFlags
}

func newServeCmd(g *globalFlags) *cobra.Command {
	f := &serveFlags{}
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "Run the ledger: embedded NATS JetStream, Pebble and the Merkle log in one process",
		Long: `Run a Spoor ledger.

By default everything runs in this one process on the folder given with --data:
an embedded NATS server with JetStream (DIR/nats, listening on 127.0.0.1:4222),
the ledger on Pebble (DIR/ledger), HTTP on 127.0.0.1:8080 and /healthz and
/metrics also on 127.0.0.1:8081 (--ops-http). The first start
creates the log key and the log's cosigner key (mode 0600) and writes their
verifier keys to DIR/log.vkey and DIR/cosigner.vkey.

Without --covenant the demo covenant of regio Amersfoort is used, with DEMO
party and administrator keys in DIR/demo-keys/ (never use them for real data).

The process's file limit (ulimit -n) is shared between HTTP, NATS and Pebble;
serve logs each part at start (docs/operations.md, "Resource limits").

Every flag can also be set in a configuration file given with --config
(deploy/spoor.yaml holds them all at their defaults); a flag on the
command line overrides the file.

Ctrl-C stops cleanly: the batch in progress is committed or left
unacknowledged on the bus, never half-done.`,
		Args: cobra.NoArgs,
		// The configuration file (config.go) is read before cobra checks
		// the required flags: --data may come from it.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyConfigFile(cmd, configPath)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyMemoryLimit(cmd, f.memLimit, g.logger()); err != nil {
				return err
			}
			return runServe(cmd.Context(), g.logger(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "YAML configuration file: a key for every flag below (deploy/spoor.yaml); flags on the command line override it")
	fl.StringVar(&f.data, "data", "", "data folder (required)")
	fl.StringVar(&f.covenant, "covenant", "", "signed covenant file (spoor covenant sign); default: the demo covenant")
	fl.StringVar(&f.admin, "admin", "", "pin the covenant administrator's verifier key (KEY or @FILE)")
	fl.StringVar(&f.httpAddr, "http", "127.0.0.1:8080", "HTTP listen address")
	fl.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "listen address of the embedded NATS server")
	fl.StringVar(&f.natsURL, "nats", "", "use an external NATS server or cluster at this URL instead of the embedded one")
	fl.IntVar(&f.replicas, "replicas", 1, "replicas of the JetStream streams on an external cluster (--nats): 3 survives the loss of one node")
	fl.IntVar(&f.maxBatch, "max-batch", 8192, "most events committed in one batch")
	fl.DurationVar(&f.batchAge, "batch-age", time.Millisecond, "how long a small batch (under 64 events) waits for more; a larger one commits as soon as the previous commit is done; negative: never wait")
	fl.DurationVar(&f.idleCosign, "idle-cosign", time.Minute, "how often an idle log re-cosigns its checkpoint")
	fl.DurationVar(&f.retention, "retention-interval", 24*time.Hour, "how often the retention job runs (0: never; spoor retention runs it by hand)")
	fl.StringVar(&f.backupDir, "backup-dir", "", "back the running store up into this folder (a consistent Pebble copy, DIR/spoor-backup-<time>/ledger; not the data keys, which are backed up on their own)")
	fl.DurationVar(&f.backupEvery, "backup-every", 24*time.Hour, "with --backup-dir: how often")
	fl.IntVar(&f.backupKeep, "backup-keep", 7, "with --backup-dir: how many backups to keep (older ones are removed)")
	fl.BoolVar(&f.noIndex, "no-subject-index", false, "keep no subject index (no index heads, no proof of complete answers); the index is built over the log when it is turned on again")
	fl.BoolVar(&f.noEncrypt, "no-encryption", false, "store envelopes unencrypted (not recommended: erasure then cannot reach backups)")
	fl.StringVar(&f.tokens, "tokens", "", "JSON file of HTTP users: [{name, role (fg|desk|party), party, token_sha256}]")
	fl.StringVar(&f.natsUsers, "nats-users", "", "require NATS users on the embedded server: this file lists each party's public NKey; parties without one get a seed in DIR/nats-credentials/ (see docs/security.md)")
	fl.StringVar(&f.natsTLSCert, "nats-tls-cert", "", "TLS certificate (PEM) of the embedded NATS listener")
	fl.StringVar(&f.natsTLSKey, "nats-tls-key", "", "private key of --nats-tls-cert")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "private key of --tls-cert")
	f.natsClient.add(fl, "CA certificate (PEM): the embedded NATS listener requires client certificates signed by it; with --nats, the CA of the server's certificate")
	f.repl.add(fl)
	f.merkle.add(fl)
	f.witness.add(fl)
	f.notify.add(fl)
	f.limits.add(fl)
	addMemoryLimitFlag(fl, &f.memLimit)
	fl.StringVar(&f.demoName, "demo", "amersfoort", "which demo covenant to use without --covenant: "+strings.Join(demo.Names(), ", "))
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func runServe(ctx context.Context, log *slog.Logger, f *serveFlags) error {
	// JetStream allows 1 to 5 replicas; more than one needs a cluster, so
	// the embedded single server refuses them.
	if f.replicas < 1 || f.replicas > 5 || (f.replicas > 1 && f.natsURL == "") {
		return fmt.Errorf("--replicas %d: give 1 to 5, and more than 1 only with --nats (an external cluster)", f.replicas)
	}
	if err := f.repl.check(f); err != nil {
		return err
	}
	if err := f.merkle.check(f.repl.on()); err != nil {
		return err
	}
	if err := f.checkBackup(); err != nil {
		return err
	}
	if err := f.limits.check(); err != nil {
		return err
	}
	// The file limit is shared between HTTP, NATS and Pebble; each gets
	// its part before anything opens a file (limits.go).
	nofile, err := fileLimit()
	if err != nil {
		return err
	}
	budget, err := planFiles(nofile, &f.limits, f.natsURL == "", f.limits.opsHTTP != "")
	if err != nil {
		return err
	}
	logBudget(log, budget, &f.limits)
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return fmt.Errorf("couldn't create the data folder: %w", err)
	}
	sc, err := loadServeCovenant(f, log)
	if err != nil {
		return err
	}
	origin := sc.Covenant.Origin
	keys, err := ensureLogKeys(f.data, origin)
	if err != nil {
		return err
	}
	tokens, err := loadTokens(f, sc)
	if err != nil {
		return err
	}
	if err := f.checkHTTPTLS(); err != nil {
		return err
	}

	store, err := pebblestore.Open(datadir.Dir(f.data).Ledger(), pebblestore.Config{Logger: log, Compress: f.noEncrypt, MaxOpenFiles: budget.Pebble})
	if err != nil {
		return err
	}
	defer store.Close()
	var dataKeys *ledger.DataKeys
	if !f.noEncrypt {
		if dataKeys, err = ledger.OpenDataKeys(datadir.Dir(f.data).DataKeys()); err != nil {
			return err
		}
	}
	// The subject index's VRF key: made at the first start with the index
	// (0600), then the same for the log's life.
	var indexVRF *subjectindex.VRFKey
	if !f.noIndex {
		if indexVRF, err = subjectindex.OpenVRFKey(datadir.Dir(f.data).IndexVRFKey()); err != nil {
			return err
		}
	}
	// With replication the ledger opens as a standby and becomes the
	// active one only once it holds the lease (serve_replica.go).
	var rr *replicaRun
	if f.repl.on() {
		if rr, err = startReplication(ctx, log, f, origin); err != nil {
			return err
		}
		defer rr.close()
	}
	// With --log trillian the ledger's tree is also Trillian's, checked
	// before every checkpoint; Open brings Trillian up to the ledger.
	merkle, merkleMetrics, closeMerkle, err := f.merkle.dial(ctx, log)
	if err != nil {
		return err
	}
	defer closeMerkle()
	l, err := openServeLedger(ctx, rr, ledger.Config{
		Store: store, Signer: keys.signer, Keys: keys.verifiers,
		Covenant: sc, AdminVkey: keys.admin(f), DataKeys: dataKeys,
		MaxBatch: f.maxBatch, MaxBatchAge: f.batchAge, IdleCosign: f.idleCosign, Logger: log,
		Merkle: merkle, WitnessFailOpen: f.witness.failOpen, IndexVRF: indexVRF,
	})
	if err != nil {
		return fmt.Errorf("couldn't open the ledger: %w", err)
	}
	defer l.Close()
	current, _ := l.Covenant()
	if current == nil {
		// A standby on an empty store has no log yet: until its first
		// batch arrives, the covenant given at start names the parties.
		current = sc
	}

	// NATS: embedded unless --nats names a server.
	natsURL := f.natsURL
	dialURL := natsURL
	var opts []nats.Option
	if natsURL == "" {
		users, err := f.embeddedUsers(current, log)
		if err != nil {
			return err
		}
		// Connections beyond max_connections are refused with an error,
		// and a client that does not authenticate in time is dropped:
		// neither can take the files of the ledger's store.
		ns, err := startEmbeddedNATS(f.data, f.natsListen, natsserver.Config{
			MaxConn: budget.NATS, AuthTimeout: f.limits.natsAuthTimeout, Users: users,
			TLSCert: f.natsTLSCert, TLSKey: f.natsTLSKey, TLSCA: f.natsClient.ca,
		})
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		// The ledger connects in-process, where the server requires no TLS:
		// dial plain, authenticated by its own key.
		opts = append(opts, ns.InProcessOptions()...)
		dialURL = strings.Replace(natsURL, "tls://", "nats://", 1)
	} else {
		copts, err := f.natsClient.options()
		if err != nil {
			return err
		}
		opts = append(opts, copts...)
	}
	// Clients on this machine (simulate) find the bus in the data folder;
	// a URL with credentials in it is not written down.
	if !strings.Contains(natsURL, "@") {
		if err := durable.WriteFile(datadir.Dir(f.data).NATSURL(), []byte(natsURL+"\n"), 0o644); err != nil {
			return err
		}
	}
	opts = append(opts, nats.Name("spoor-ledger"), nats.MaxReconnects(-1))
	nc, err := nats.Connect(dialURL, opts...)
	if err != nil {
		return fmt.Errorf("couldn't connect to NATS at %s: %w", redactURLs(natsURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("couldn't open JetStream: %w", err)
	}
	parties := make([]string, 0, len(current.Covenant.Parties))
	for _, p := range current.Covenant.Parties {
		parties = append(parties, p.ID)
	}
	if err := natsbus.EnsureStreams(ctx, js, parties, natsbus.StreamConfig{Replicas: f.replicas, AckWait: f.repl.ackWait}); err != nil {
		return fmt.Errorf("couldn't set up the JetStream streams: %w", err)
	}

	// Notifications (serve_notify.go): written to the outbox by ingest, the
	// witnessing loop and the retention job; delivered by the active
	// ledger only.
	nt, err := f.notify.notifier(f.data, l, current, log)
	if err != nil {
		return err
	}
	icfg := ingest.Config{Ledger: l, JS: js, Logger: log}
	if nt != nil {
		icfg.Notify = nt
	}
	in := ingest.New(icfg)
	reg := prometheus.NewRegistry()
	if nt != nil {
		reg.MustRegister(nt.Metrics()...)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(l.Metrics()...)
	reg.MustRegister(merkleMetrics...)
	reg.MustRegister(in.Metrics()...)
	// The backup collectors are registered with or without --backup-dir,
	// so that /metrics shows the same series either way.
	backups := pebblestore.NewBackups(store, pebblestore.BackupConfig{
		Dir: f.backupDir, Every: f.backupEvery, Keep: f.backupKeep, Logger: log,
		TreeSize: func() uint64 { return headSize(l) },
	})
	reg.MustRegister(backups.Metrics()...)
	wit, err := f.witness.witnesser(l, log, alarmer(nt, l, log))
	if err != nil {
		return err
	}
	reg.MustRegister(wit.Metrics()...)
	api := httpapi.New(httpapi.Config{
		Witnessing: wit.Health,
		Ledger:     l, Logger: log, Gatherer: reg,
		Answers: answer.New(answer.Config{Ledger: l, LogVkey: keys.logVkey, CosignerVkey: keys.cosVkey}),
		Tokens:  tokens,
		Healthy: func() error {
			if !nc.IsConnected() {
				return errors.New("not connected to NATS")
			}
			if l.Head() == nil {
				return errors.New("a standby without any batch applied yet")
			}
			return nil
		},
	})
	conns := newConnMetrics(reg)
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("couldn't listen for HTTP on %s: %w", f.httpAddr, err)
	}
	ln = limitListener(ln, "api", budget.HTTP, f.limits.maxConnsPerAddr, conns)
	hs := newHTTPServer(api, &f.limits)
	// /healthz and /metrics also on a listener of their own, which a flood
	// of the public one cannot fill.
	opsLn, err := listenOps(&f.limits, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	var ops *http.Server
	if opsLn != nil {
		opsLn = limitListener(opsLn, "ops", budget.Ops, 0, conns)
		ops = newHTTPServer(opsHandler(api), &f.limits)
	}

	log.Info("spoor ledger running",
		"origin", origin, "tree_size", headSize(l), "standby", l.Standby(), "covenant_version", current.Covenant.Version,
		"http", httpScheme(f)+ln.Addr().String(), "ops_http", opsURL(opsLn), "nats", redactURLs(natsURL),
		"log_vkey", datadir.Dir(f.data).LogVkey(), "fg_token", datadir.Dir(f.data).FGToken())
	if f.covenant == "" {
		log.Warn("running on the DEMO covenant with DEMO keys: never use them for real data",
			"demo_keys", datadir.Dir(f.data).DemoKeys())
	}

	grp, gctx := errgroup.WithContext(ctx)
	// What only the active ledger runs; a standby starts it on promotion.
	startActive := func() {
		grp.Go(func() error { return in.Run(gctx) })
		if f.retention > 0 {
			grp.Go(func() error { return runRetentionLoop(gctx, l, log, f.retention, nt) })
		}
		// Only the active ledger delivers notifications (never a standby).
		if nt != nil {
			grp.Go(func() error { return nt.Run(gctx) })
		}
		grp.Go(func() error { return in.ServeReceipts(gctx, nc) })
		// Only the active ledger asks witnesses (never a standby).
		grp.Go(func() error { return wit.Run(gctx) })
	}
	// Every replica may back up its own store: a standby's copy is as
	// good, and spares the active ledger the work.
	if f.backupDir != "" {
		grp.Go(func() error { return backups.Run(gctx) })
	}
	if rr == nil {
		startActive()
	} else {
		grp.Go(func() error { return rr.run(gctx, grp, l, dataKeys, startActive) })
	}
	grp.Go(func() error {
		serveHTTP := func() error { return hs.Serve(ln) }
		if f.tlsCert != "" {
			serveHTTP = func() error { return hs.ServeTLS(ln, f.tlsCert, f.tlsKey) }
		}
		if err := serveHTTP(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	if ops != nil {
		grp.Go(func() error {
			if err := ops.Serve(opsLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("operations HTTP server: %w", err)
			}
			return nil
		})
	}
	grp.Go(func() error {
		select {
		case <-l.Done():
			return fmt.Errorf("the sequencer stopped: %w", l.Err())
		case <-gctx.Done():
			return nil
		}
	})
	grp.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ops != nil {
			// Health checks may fail now: the ledger is stopping.
			_ = ops.Close()
		}
		if err := hs.Shutdown(sctx); err != nil {
			// A client that opened a connection and never used it keeps
			// Shutdown waiting; the ledger is done, so just close.
			log.Warn("HTTP shutdown did not finish; closing connections", "err", err)
			return hs.Close()
		}
		return nil
	})
	err = grp.Wait()
	if cerr := l.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		log.Info("spoor ledger stopped cleanly", "tree_size", headSize(l))
	}
	return err
}

func loadServeCovenant(f *serveFlags, log *slog.Logger) (*events.SignedCovenant, error) {
	if f.covenant != "" {
		b, err := os.ReadFile(f.covenant)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the covenant: %w", err)
		}
		sc, err := events.ParseSignedCovenant(b)
		if err != nil {
			return nil, fmt.Errorf("refusing covenant %s: %w", f.covenant, err)
		}
		return sc, nil
	}
	m, err := demo.Ensure(datadir.Dir(f.data).DemoKeys(), f.demoName)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the demo covenant: %w", err)
	}
	if f.admin == "" {
		f.admin = m.AdminVkey
	}
	return m.Signed, nil
}

type logKeys struct {
	signer           *verifier.CheckpointSigner
	verifiers        *verifier.LogKeys
	logVkey, cosVkey string
}

func (k *logKeys) admin(f *serveFlags) string {
	v, err := readKeyArg(f.admin)
	if err != nil {
		return f.admin
	}
	return v
}

// ensureLogKeys loads the log and cosigner keys from dir, creating them on
// first start. A log key made for another origin is refused.
func ensureLogKeys(dir, origin string) (*logKeys, error) {
	d := datadir.Dir(dir)
	paths := map[string]string{datadir.LogKeyName: d.LogKey(), datadir.LogVkeyName: d.LogVkey(),
		datadir.CosignerKeyName: d.CosignerKey(), datadir.CosignerVkeyName: d.CosignerVkey()}
	if _, err := os.Stat(paths[datadir.LogKeyName]); errors.Is(err, os.ErrNotExist) {
		ls, lv, cs, cv, err := verifier.GenerateLogKeys(origin)
		if err != nil {
			return nil, fmt.Errorf("couldn't generate log keys: %w", err)
		}
		if err := writeSecretFile(paths[datadir.LogKeyName], []byte(ls+"\n")); err != nil {
			return nil, err
		}
		if err := writeSecretFile(paths[datadir.CosignerKeyName], []byte(cs+"\n")); err != nil {
			return nil, err
		}
		if err := durable.WriteFile(paths[datadir.LogVkeyName], []byte(lv+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("couldn't write log.vkey: %w", err)
		}
		if err := durable.WriteFile(paths[datadir.CosignerVkeyName], []byte(cv+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("couldn't write cosigner.vkey: %w", err)
		}
	}
	read := func(n string) (string, error) {
		b, err := os.ReadFile(paths[n])
		if err != nil {
			return "", fmt.Errorf("couldn't read %s: %w", n, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var vals [4]string
	for i, n := range []string{datadir.LogKeyName, datadir.LogVkeyName, datadir.CosignerKeyName, datadir.CosignerVkeyName} {
		v, err := read(n)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	signer, err := verifier.NewCheckpointSigner(vals[0], vals[2])
	if err != nil {
		return nil, fmt.Errorf("couldn't load the log signing keys: %w", err)
	}
	if signer.Origin() != origin {
		return nil, fmt.Errorf("the log key in %s is for origin %q, but the covenant's origin is %q", dir, signer.Origin(), origin)
	}
	vk, err := verifier.ParseLogKeys(vals[1], vals[3])
	if err != nil {
		return nil, fmt.Errorf("couldn't load the log verifier keys: %w", err)
	}
	return &logKeys{signer: signer, verifiers: vk, logVkey: vals[1], cosVkey: vals[3]}, nil
}

// demoCovenantName names the demo whose desk users serve admits: the demo
// covenant itself, or a later version of it given with --covenant (a
// witness policy added with spoor covenant next), which is signed with the
// demo administrator key in DATA/demo-keys. A real covenant is never
// signed with a demo key, so it gets no demo users.
func demoCovenantName(f *serveFlags, sc *events.SignedCovenant) string {
	if f.covenant == "" {
		return f.demoName
	}
	m, err := demo.Load(datadir.Dir(f.data).DemoKeys())
	if err != nil || sc == nil || sc.Covenant.Administrator.Key != m.AdminVkey || sc.Covenant.Origin != m.Signed.Covenant.Origin {
		return ""
	}
	return m.Name
}

// tokenEntry is one HTTP user of a --tokens file.
type tokenEntry struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	Party       string `json:"party,omitempty"`
	TokenSHA256 string `json:"token_sha256"`
}

// loadTokens gathers the HTTP users: the FG token in DIR/fg.token (made on
// first start), the demo desk users on a demo covenant, and --tokens.
func loadTokens(f *serveFlags, sc *events.SignedCovenant) (map[[32]byte]httpapi.Principal, error) {
	out := map[[32]byte]httpapi.Principal{}
	fg, err := ensureToken(datadir.Dir(f.data).FGToken())
	if err != nil {
		return nil, err
	}
	out[httpapi.TokenHash(fg)] = httpapi.Principal{Role: httpapi.RoleFG, Name: "fg"}
	if name := demoCovenantName(f, sc); name != "" {
		for _, u := range demo.DeskUsers(name) {
			tok, err := ensureToken(datadir.Dir(f.data).DemoDeskToken(u.Name))
			if err != nil {
				return nil, err
			}
			out[httpapi.TokenHash(tok)] = httpapi.Principal{Role: httpapi.RoleDesk, Name: "demo-" + u.Name, Party: u.Party}
		}
	}
	if f.tokens == "" {
		return out, nil
	}
	b, err := os.ReadFile(f.tokens)
	if err != nil {
		return nil, fmt.Errorf("couldn't read --tokens: %w", err)
	}
	var entries []tokenEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("--tokens %s: %w", f.tokens, err)
	}
	for i, e := range entries {
		h, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(h) != 32 || e.Name == "" {
			return nil, fmt.Errorf("--tokens %s: entry %d needs a name and token_sha256 (64 hex)", f.tokens, i)
		}
		role := httpapi.Role(e.Role)
		switch role {
		case httpapi.RoleFG, httpapi.RoleDesk, httpapi.RoleParty:
		default:
			return nil, fmt.Errorf("--tokens %s: entry %d: role must be fg, desk or party", f.tokens, i)
		}
		if role == httpapi.RoleParty && e.Party == "" {
			return nil, fmt.Errorf("--tokens %s: entry %d: a party token names its party", f.tokens, i)
		}
		out[[32]byte(h)] = httpapi.Principal{Role: role, Name: e.Name, Party: e.Party}
	}
	return out, nil
}

// ensureToken reads a bearer token file, creating it (0600) on first use.
func ensureToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("couldn't read token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := writeSecretFile(path, []byte(tok+"\n")); err != nil {
		return "", err
	}
	return tok, nil
}

// readKeyArg resolves a KEY|@FILE argument.
func readKeyArg(arg string) (string, error) {
	if p, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("couldn't read key file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return arg, nil
}

// startEmbeddedNATS starts the embedded server listening on listen, with
// its store in DIR/nats; cfg sets its users, TLS and limits.
func startEmbeddedNATS(dataDir, listen string, cfg natsserver.Config) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: port: %w", listen, err)
	}
	cfg.Host, cfg.Port, cfg.StoreDir = host, port, datadir.Dir(dataDir).NATS()
	ns, err := natsserver.Start(cfg)
	if errors.Is(err, natsserver.ErrNotReady) {
		return nil, fmt.Errorf("%w on %s (is the port in use? try --nats-listen)", err, listen)
	}
	return ns, err
}

// runRetentionLoop runs the retention job a minute after start and then
// every interval. A failed run is logged and retried at the next tick: the
// job is resumable, and a failed commit stops the ledger anyway.
// A failed run leaves disclosures past their term stored: the FG is told
// (a retention_overdue alarm) when notifications are on (nt not nil).
func runRetentionLoop(ctx context.Context, l *ledger.Ledger, log *slog.Logger, every time.Duration, nt *notify.Notifier) error {
	timer := time.NewTimer(min(time.Minute, every))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if _, err := l.RunRetention(ctx, false, nil); err != nil && ctx.Err() == nil {
			log.Error("retention run failed; will retry", "err", err)
			if nt != nil {
				if err := nt.Alarm(time.Now(), webhook.AlarmData{Kind: webhook.AlarmRetentionOverdue, TreeSize: headSize(l), Code: "retention_run_failed"}); err != nil {
					log.Error("couldn't queue the retention alarm", "err", err)
				}
			}
		}
		timer.Reset(every)
	}
}

// embeddedUsers gathers who may connect to the embedded NATS server: nil
// (no users) without --nats-users. An embedded server that listens beyond
// this machine must require users: without them anyone who reaches it could
// publish as any party and read every disclosure on the bus.
func (f *serveFlags) embeddedUsers(current *events.SignedCovenant, log *slog.Logger) ([]natsserver.User, error) {
	if f.natsUsers == "" {
		if !natsserver.IsLoopback(f.natsListen) {
			return nil, fmt.Errorf("refusing to run the embedded NATS server on %s without --nats-users: only a loopback address may go without NATS users", f.natsListen)
		}
		return nil, nil
	}
	parties := make([]string, 0, len(current.Covenant.Parties))
	for _, p := range current.Covenant.Parties {
		parties = append(parties, p.ID)
	}
	users, err := natsserver.LoadUsers(f.natsUsers, credentialsDir(f.data), parties, log)
	if err != nil {
		return nil, err
	}
	return append([]natsserver.User{}, users...), nil
}

// opsURL names the operations listener for the start line.
func opsURL(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return "http://" + ln.Addr().String()
}

// httpScheme is the scheme the HTTP listener speaks.
func httpScheme(f *serveFlags) string {
	if f.tlsCert != "" {
		return "https://"
	}
	return "http://"
}

// checkBackup refuses backup flags that cannot work, before anything starts.
func (f *serveFlags) checkBackup() error {
	if f.backupDir == "" {
		return nil
	}
	if f.backupEvery <= 0 || f.backupKeep < 1 {
		return fmt.Errorf("--backup-every %s --backup-keep %d: give a positive interval and keep at least 1", f.backupEvery, f.backupKeep)
	}
	data, err1 := filepath.Abs(f.data)
	dir, err2 := filepath.Abs(f.backupDir)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	// Inside the store's own folder Pebble would see the copies as
	// stray files; beside it, in the data folder, is fine.
	if rel, err := filepath.Rel(datadir.Dir(data).Ledger(), dir); err == nil && !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("--backup-dir %s is inside the store (%s); give a folder outside it, better on another disk", f.backupDir, datadir.Dir(f.data).Ledger())
	}
	return nil
}

// checkHTTPTLS loads the HTTPS certificate once at start, so that a wrong
// file stops serve before anything runs.
func (f *serveFlags) checkHTTPTLS() error {
	if f.tlsCert == "" && f.tlsKey == "" {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return nil
}
