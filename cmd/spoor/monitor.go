package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/monitor"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// exitMonitorAlarm is the exit status of a monitor that saw a fork, a
// rollback or a bad signature; 1 means it could not run.
const exitMonitorAlarm = 2

type monitorFlags struct {
	url      string
	vkey     string
	cosVkey  string
	state    string
	interval time.Duration
	once     bool
	metrics  string
	timeout  time.Duration
	witness  []string
	policy   string
}

func newMonitorCmd(g *globalFlags) *cobra.Command {
	f := &monitorFlags{}
	cmd := &cobra.Command{
		Use:   "monitor --url URL --vkey KEY|@FILE --cosigner-vkey KEY|@FILE --state FILE",
		Short: "Follow a log's checkpoints and raise the alarm on a fork, a rollback or a bad signature",
		Long: `Follow a Spoor log's /checkpoint and check that each new checkpoint extends
the last one verified.

Each checkpoint must be signed by the pinned log key and cosigned by the pinned
cosigner key. A larger tree must be consistent with the last verified one: the
consistency proof is computed here from the log's public tiles, each tile
authenticated against the new checkpoint, and verified against the old root.
The last verified checkpoint is kept in --state FILE, which is replaced (write
and rename) only after a new checkpoint passed every check; on first use the
log's current checkpoint is trusted and written there.

An alarm (a fork: the same size with another root, or a tree that does not
extend the old one; a rollback: a smaller tree or an older cosignature time;
a bad signature; tiles that do not match the log's own checkpoint) is logged at
level ERROR, counted in the metrics, and ends the monitor with exit status 2.
With --metrics the monitor keeps running after an alarm, so that the alarm
stays visible to Prometheus (spoor_monitor_alarm{kind}), and exits with 2 when
stopped. The state is never replaced by a checkpoint that raised an alarm.
Network errors are retried at the next interval (with --once they exit 1).

Witnesses: with --witness URL (repeatable) or --policy FILE (the witnesses of
a C2SP tlog-policy text, such as the covenant's witness_policy), after each
verified checkpoint the monitor reads each witness's monitoring endpoint
(URL/<hex SHA-256 of origin>/checkpoint) and proves from the log's tiles that
the log's tree extends the checkpoint the witness holds. A witness holding a
checkpoint signed by the log key that the log does not extend (a split view:
someone with the log key showed the witness another tree) raises a
witness-fork alarm; one ahead of the log is checked once the log reaches its
size. A witness that is down or holds nothing of the log is only logged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMonitor(cmd.Context(), g.logger(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "the log's HTTP address (required)")
	fl.StringVar(&f.vkey, "vkey", "", "pinned log verifier key, KEY or @FILE (required)")
	fl.StringVar(&f.cosVkey, "cosigner-vkey", "", "pinned cosigner verifier key, KEY or @FILE (required)")
	fl.StringVar(&f.state, "state", "", "file holding the last verified checkpoint (required)")
	fl.DurationVar(&f.interval, "interval", 10*time.Second, "how often to fetch the checkpoint")
	fl.BoolVar(&f.once, "once", false, "check once and exit")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on this address (for example 127.0.0.1:9464)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of one check")
	fl.StringArrayVar(&f.witness, "witness", nil, "also check the checkpoint this witness holds (its URL prefix; repeatable)")
	fl.StringVar(&f.policy, "policy", "", "also check the checkpoints held by the witnesses of this C2SP tlog-policy file (those with a URL)")
	for _, n := range []string{"url", "vkey", "cosigner-vkey", "state"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func runMonitor(ctx context.Context, log *slog.Logger, f *monitorFlags) error {
	lv, err := readKeyArg(f.vkey)
	if err != nil {
		return fmt.Errorf("--vkey: %w", err)
	}
	cv, err := readKeyArg(f.cosVkey)
	if err != nil {
		return fmt.Errorf("--cosigner-vkey: %w", err)
	}
	keys, err := verifier.ParseLogKeys(lv, cv)
	if err != nil {
		return fmt.Errorf("pinned keys: %w", err)
	}
	if f.interval <= 0 {
		return errors.New("--interval must be positive")
	}
	witnesses, err := f.witnessEndpoints(log)
	if err != nil {
		return err
	}
	mon, err := monitor.New(monitor.Config{
		Client:    &tlogclient.Client{URL: f.url, Keys: keys, HTTP: &http.Client{Timeout: f.timeout}},
		StatePath: f.state, Logger: log, Witnesses: witnesses,
	})
	if err != nil {
		return err
	}
	log.Info("monitor starting", "witnesses", len(witnesses), "url", f.url, "log_key", verifier.KeyFingerprint(lv), "cosigner_key", verifier.KeyFingerprint(cv), "state", f.state)

	var srv *http.Server
	if f.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(mon.Metrics()...)
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("couldn't listen for metrics on %s: %w", f.metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		log.Info("serving monitor metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	}

	var alarmed *monitor.Alarm
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, f.timeout)
		_, err := mon.Check(cctx)
		cancel()
		var alarm *monitor.Alarm
		switch {
		case errors.As(err, &alarm):
			alarmed = alarm
			if f.once || srv == nil {
				return &exitError{code: exitMonitorAlarm, err: fmt.Errorf("ALARM %w", alarm)}
			}
		case err != nil && f.once:
			return err
		case err != nil:
			if ctx.Err() != nil {
				break
			}
			log.Warn("check failed; retrying at the next interval", "err", err)
		case f.once:
			return nil
		}
		select {
		case <-ctx.Done():
			if alarmed != nil {
				return &exitError{code: exitMonitorAlarm, err: fmt.Errorf("stopped after ALARM %w", alarmed)}
			}
			log.Info("monitor stopped")
			return nil
		case <-tick.C:
		}
	}
}

// witnessEndpoints gathers the witnesses to check from --witness and
// --policy.
func (f *monitorFlags) witnessEndpoints(log *slog.Logger) ([]monitor.WitnessEndpoint, error) {
	var out []monitor.WitnessEndpoint
	seen := map[string]bool{}
	add := func(name, url string) {
		if !seen[url] {
			seen[url] = true
			out = append(out, monitor.WitnessEndpoint{Name: name, URL: url})
		}
	}
	if f.policy != "" {
		text, err := os.ReadFile(f.policy)
		if err != nil {
			return nil, fmt.Errorf("--policy: %w", err)
		}
		p, err := events.ParseWitnessPolicy(string(text))
		if err != nil {
			return nil, fmt.Errorf("--policy %s: %w", f.policy, err)
		}
		for _, w := range p.Witnesses {
			if w.URL == "" {
				log.Warn("the policy gives no URL for a witness; it is not checked", "witness", w.Name)
				continue
			}
			add(w.Name, w.URL)
		}
	}
	for _, u := range f.witness {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("--witness %q: not an http(s) URL", u)
		}
		add(u, u)
	}
	return out, nil
}
