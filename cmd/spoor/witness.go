package main

import (
	"bytes"
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
	fnote "github.com/transparency-dev/formats/note"
	"gopkg.in/yaml.v3"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// witnessConfig is the operator's file of `spoor witness serve`.
type witnessConfig struct {
	// KeyFile is the witness's signer key (spoor witness keygen), mode
	// 0600. Required.
	KeyFile string `yaml:"key_file"`
	// StateDir holds the witness's state: the last checkpoint it cosigned
	// per log, the hourly ones and the refused ones kept as evidence.
	// Required; one witness process at a time.
	StateDir string `yaml:"state_dir"`
	// Listen is the HTTP listen address; default 127.0.0.1:8090.
	Listen string `yaml:"listen"`
	// Prefix is the URL path prefix of the protocol endpoints; default
	// none.
	Prefix string `yaml:"prefix"`
	// Logs are the logs this witness witnesses: each its origin and its
	// note verifier key (the ledger's DATA/log.vkey). A log removed from
	// the list keeps its state; adding it again resumes from it.
	Logs []witness.LogConfig `yaml:"logs"`
}

func newWitnessCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run an independent witness (C2SP tlog-witness): cosign a log's checkpoints only when they extend the last one",
		Long: `A witness is run by someone other than the log's operator: an organisation's
FG, a neighbouring region, a university, the Autoriteit Persoonsgegevens. It
cosigns a log's checkpoint, with its own timestamp, only when the checkpoint
extends the last one it cosigned for that log, so that the operator cannot
show one party one log and another party another, and cannot state any time
it likes. It sees origin, size and root only: no entry of the log.

  spoor witness keygen --name NAME -o witness.key      (prints the verifier key)
  spoor witness serve --config witness.yaml

The configuration file (YAML):

  key_file: witness.key
  state_dir: witness-state
  listen: 127.0.0.1:8090
  logs:
    - origin: spoor.example/regio-amersfoort
      vkey: <the ledger's DATA/log.vkey>`,
	}
	cmd.AddCommand(newWitnessKeygenCmd(), newWitnessServeCmd(g))
	return cmd
}

func newWitnessKeygenCmd() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "keygen --name NAME -o FILE",
		Short: "Make a witness key (tlog-cosignature/v1, Ed25519): the signer key to FILE (0600, never overwritten), the verifier key on standard output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			skey, vkey, err := verifier.GenerateWitnessKey(name)
			if err != nil {
				return err
			}
			if err := writeSecretFile(out, []byte(skey+"\n")); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the witness's name, e.g. witness.example/fg-gemeente-amersfoort (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file for the signer key (required)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func newWitnessServeCmd(g *globalFlags) *cobra.Command {
	var configPath, listen string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Serve the witness: POST /add-checkpoint, GET /<hex SHA-256 of origin>/checkpoint, a status page at /, /metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadWitnessConfig(configPath)
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Listen = listen
			}
			return runWitness(cmd.Context(), g.logger(), cfg)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the witness's configuration file (required)")
	cmd.Flags().StringVar(&listen, "listen", "", "HTTP listen address (overrides the file; default 127.0.0.1:8090)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// loadWitnessConfig reads the configuration strictly: an unknown key is an
// error naming its line.
func loadWitnessConfig(path string) (*witnessConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the witness configuration: %w", err)
	}
	var cfg witnessConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case cfg.KeyFile == "":
		return nil, fmt.Errorf("%s: key_file is required", path)
	case cfg.StateDir == "":
		return nil, fmt.Errorf("%s: state_dir is required", path)
	case len(cfg.Logs) == 0:
		return nil, fmt.Errorf("%s: logs lists no log to witness", path)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8090"
	}
	return &cfg, nil
}

func runWitness(ctx context.Context, log *slog.Logger, cfg *witnessConfig) error {
	skey, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("couldn't read the witness key: %w", err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(string(skey)))
	if err != nil {
		return fmt.Errorf("the witness key in %s: %w", cfg.KeyFile, err)
	}
	vkey, err := verifier.VerifierKeyOf(string(skey))
	if err != nil {
		return fmt.Errorf("the witness key in %s: %w", cfg.KeyFile, err)
	}
	w, err := witness.New(witness.Config{Signer: signer, VKey: vkey, Logs: cfg.Logs,
		StateDir: cfg.StateDir, Prefix: cfg.Prefix, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Metrics()...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", w.Handler())
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	origins := make([]string, len(cfg.Logs))
	for i, l := range cfg.Logs {
		origins[i] = l.Origin
	}
	log.Info("spoor witness running", "name", signer.Name(), "http", "http://"+ln.Addr().String()+cfg.Prefix,
		"state", cfg.StateDir, "logs", strings.Join(origins, ","))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("spoor witness stopped")
	return nil
}
