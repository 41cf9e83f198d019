package main

// The configuration file of spoor serve (--config FILE): the operator's
// reference is the Config struct below, one documented field per flag of
// serve; deploy/spoor.yaml is an example holding every field at its default.
//
// A setting comes from, in order of precedence: the command line (a flag
// counts as given only when it is on the command line), the file, the
// flag's default. So the file replaces the defaults of one installation,
// and a flag still overrides it for one run. The file is read once, at
// start, before anything else happens; an unknown key, a value of the wrong
// type or a secret written into the file stops serve and names the line.
//
// The file names secrets by path and never holds one: every field for a
// private key, seed, credentials or password is a *_file path, and the NATS
// URL may not carry a password. The tokens file (--tokens) and the NATS
// users file (--nats-users) stay files of their own, referenced from here:
// they change whenever a desk user or a party does, the configuration does
// not.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Config is the configuration file of spoor serve, in YAML. Each field is
// one flag of serve, named in its flag tag; its key is the flag's name with
// "_" for "-" (and "_file" added where the value is the path of a secret).
// Relative paths are taken from the working directory, as on the command
// line. A key left out keeps the flag's default.
type Config struct {
	// Data is the data folder: the Pebble store (ledger/), the embedded
	// NATS server's store (nats/), the log and cosigner keys, the data keys
	// (datakeys/) and the FG token. Required, here or with --data; no
	// default.
	Data string `yaml:"data" flag:"data"`
	// Covenant is the path of the signed covenant file (spoor covenant
	// sign). Optional; default "": the demo covenant named by Demo, with
	// DEMO keys in DATA/demo-keys/ (never for real data).
	Covenant string `yaml:"covenant" flag:"covenant"`
	// Admin pins the covenant administrator's verifier key: the key
	// itself, or @FILE for a file holding it (a public key, not a secret).
	// Optional; default "": with the demo covenant its demo administrator.
	Admin string `yaml:"admin" flag:"admin"`
	// Demo names the demo covenant used without Covenant (amersfoort or
	// another of events/demo). Optional; default "amersfoort".
	Demo string `yaml:"demo" flag:"demo"`
	// NoEncryption stores envelopes unencrypted, so that erasure cannot
	// reach backups (not recommended). Optional; default false.
	NoEncryption bool `yaml:"no_encryption" flag:"no-encryption"`
	// MemoryLimitMiB is the Go runtime's soft memory limit in MiB (Pebble's
	// cache and memtables come on top); 0: none. A GOMEMLIMIT in the
	// environment wins over this key; only the flag wins over GOMEMLIMIT.
	// Optional; default 512.
	MemoryLimitMiB int `yaml:"memory_limit_mib" flag:"memory-limit-mib"`
	// LogLevel is the level of the log on stderr: debug, info, warn or
	// error. Optional; default "info".
	LogLevel string `yaml:"log_level" flag:"log-level"`
	// LogFormat is the format of the log on stderr: text or json.
	// Optional; default "text".
	LogFormat string `yaml:"log_format" flag:"log-format"`

	// MaxBatch is the most events committed in one batch. Optional;
	// default 8192.
	MaxBatch int `yaml:"max_batch" flag:"max-batch"`
	// BatchAge is how long a small batch (under 64 events) waits for more;
	// a larger one commits as soon as the previous commit is done;
	// negative: never wait. Optional; default 1ms.
	BatchAge time.Duration `yaml:"batch_age" flag:"batch-age"`
	// IdleCosign is how often an idle log re-cosigns its checkpoint.
	// Optional; default 1m.
	IdleCosign time.Duration `yaml:"idle_cosign" flag:"idle-cosign"`
	// RetentionInterval is how often the retention job runs; 0: never
	// (spoor retention runs it by hand). Optional; default 24h.
	RetentionInterval time.Duration `yaml:"retention_interval" flag:"retention-interval"`

	// BackupDir is the folder the running store is backed up into (a
	// consistent Pebble copy in DIR/spoor-backup-<time>/ledger; not the
	// data keys, which are backed up on their own). It must lie outside
	// DATA/ledger, better on another disk. Optional; default "": no
	// backups.
	BackupDir string `yaml:"backup_dir" flag:"backup-dir"`
	// BackupEvery is how often a backup is made, with BackupDir. Optional;
	// default 24h.
	BackupEvery time.Duration `yaml:"backup_every" flag:"backup-every"`
	// BackupKeep is how many backups are kept, with BackupDir; older ones
	// are removed. Optional; default 7.
	BackupKeep int `yaml:"backup_keep" flag:"backup-keep"`

	// HTTP is the listen address of the HTTP API. Optional; default
	// "127.0.0.1:8080".
	HTTP string `yaml:"http" flag:"http"`
	// TLSCert is the certificate (PEM) to serve HTTPS with. Optional;
	// default "": plain HTTP.
	TLSCert string `yaml:"tls_cert" flag:"tls-cert"`
	// TLSKeyFile is the path of the private key of TLSCert: a secret,
	// given by path only. Optional (required with TLSCert); default "".
	TLSKeyFile string `yaml:"tls_key_file" flag:"tls-key"`
	// Tokens is the path of the JSON file of HTTP users, [{name, role
	// (fg|desk|party), party, token_sha256}]: a file of its own, which
	// changes when users do. It holds hashes of tokens, not tokens.
	// Optional; default "": only the FG token in DATA/fg.token (and the
	// demo desk users on the demo covenant).
	Tokens string `yaml:"tokens" flag:"tokens"`
	// OpsHTTP is the operations listener, plain HTTP with /healthz and
	// /metrics only, with connections of its own; "": none. When the
	// default address is taken serve goes on without it (and says so); an
	// address given here must be free. Optional; default
	// "127.0.0.1:8081".
	OpsHTTP string `yaml:"ops_http" flag:"ops-http"`
	// HTTPReadTimeout is the most time to read one HTTP request, body
	// included. Optional; default 30s.
	HTTPReadTimeout time.Duration `yaml:"http_read_timeout" flag:"http-read-timeout"`
	// HTTPWriteTimeout is the most time to answer one HTTP request, from
	// the end of its headers. Optional; default 1m.
	HTTPWriteTimeout time.Duration `yaml:"http_write_timeout" flag:"http-write-timeout"`
	// HTTPIdleTimeout is how long an idle keep-alive HTTP connection is
	// kept. Optional; default 1m.
	HTTPIdleTimeout time.Duration `yaml:"http_idle_timeout" flag:"http-idle-timeout"`
	// HTTPMaxHeaderBytes is the largest HTTP request header block in
	// bytes, at least 4096. Optional; default 32768.
	HTTPMaxHeaderBytes int `yaml:"http_max_header_bytes" flag:"http-max-header-bytes"`
	// HTTPMaxConns is the most HTTP connections at once; more wait in the
	// kernel's queue. 0: derived from the file limit (ulimit -n) minus
	// what NATS and Pebble keep, at most 4096. Optional; default 0.
	HTTPMaxConns int `yaml:"http_max_conns" flag:"http-max-conns"`
	// HTTPMaxConnsPerAddr is the most HTTP connections from one client
	// address; more are closed at once. 0: no limit (behind a reverse
	// proxy, where every client has the proxy's address). Optional;
	// default 32.
	HTTPMaxConnsPerAddr int `yaml:"http_max_conns_per_addr" flag:"http-max-conns-per-addr"`

	// NATS is the URL of an external NATS server or cluster (comma
	// separated) to use instead of the embedded one. It may not hold a
	// password: give NATSUser and NATSPasswordFile. Optional; default "":
	// the embedded server.
	NATS string `yaml:"nats" flag:"nats"`
	// Replicas is the number of replicas of the JetStream streams on an
	// external cluster (NATS), 1 to 5; 3 survives the loss of one node.
	// Optional; default 1.
	Replicas int `yaml:"replicas" flag:"replicas"`
	// NATSListen is the listen address of the embedded NATS server; beyond
	// loopback it needs NATSUsers. Optional; default "127.0.0.1:4222".
	NATSListen string `yaml:"nats_listen" flag:"nats-listen"`
	// NATSUsers is the path of the file listing each party's public NKey:
	// with it the embedded server requires NATS users, and parties without
	// one get a seed in DATA/nats-credentials/ (docs/security.md). A file
	// of its own, which changes when parties do. Optional; default "": no
	// users (loopback only).
	NATSUsers string `yaml:"nats_users" flag:"nats-users"`
	// NATSMaxConnections is max_connections of the embedded NATS server;
	// 0: derived from the file limit (an eighth of it, 16 to 1024).
	// Optional; default 0.
	NATSMaxConnections int `yaml:"nats_max_connections" flag:"nats-max-connections"`
	// NATSAuthTimeout is how long a client of the embedded NATS server has
	// to authenticate (with NATSUsers) before it is disconnected.
	// Optional; default 2s.
	NATSAuthTimeout time.Duration `yaml:"nats_auth_timeout" flag:"nats-auth-timeout"`
	// NATSTLSCert is the TLS certificate (PEM) of the embedded NATS
	// listener. Optional; default "": no TLS.
	NATSTLSCert string `yaml:"nats_tls_cert" flag:"nats-tls-cert"`
	// NATSTLSKeyFile is the path of the private key of NATSTLSCert: a
	// secret, given by path only. Optional (required with NATSTLSCert);
	// default "".
	NATSTLSKeyFile string `yaml:"nats_tls_key_file" flag:"nats-tls-key"`
	// NATSCA is a CA certificate (PEM): the embedded NATS listener
	// requires client certificates signed by it; with NATS, the CA of the
	// server's certificate. Optional; default "".
	NATSCA string `yaml:"nats_ca" flag:"nats-ca"`
	// NATSNKeyFile is the path of the ledger's NATS user NKey seed: a
	// secret, given by path only. One credential at most of NATSNKeyFile,
	// NATSCredsFile and NATSUser. Optional; default "".
	NATSNKeyFile string `yaml:"nats_nkey_file" flag:"nats-nkey"`
	// NATSCredsFile is the path of a .creds file (user JWT and seed) of a
	// decentralised NATS deployment: a secret, given by path only.
	// Optional; default "".
	NATSCredsFile string `yaml:"nats_creds_file" flag:"nats-creds"`
	// NATSUser is the ledger's NATS user name, with NATSPasswordFile.
	// Optional; default "".
	NATSUser string `yaml:"nats_user" flag:"nats-user"`
	// NATSPasswordFile is the path of the file holding NATSUser's
	// password: a secret, given by path only. Optional (required with
	// NATSUser); default "".
	NATSPasswordFile string `yaml:"nats_password_file" flag:"nats-password-file"`
	// NATSClientCert is the client certificate (PEM) for NATS TLS, when
	// the server requires one. Optional; default "".
	NATSClientCert string `yaml:"nats_client_cert" flag:"nats-client-cert"`
	// NATSClientKeyFile is the path of the private key of NATSClientCert:
	// a secret, given by path only. Optional (required with
	// NATSClientCert); default "".
	NATSClientKeyFile string `yaml:"nats_client_key_file" flag:"nats-client-key"`

	// Replicate replicates the ledger over the NATS cluster (stream
	// SPOOR_LOG): take the lease and be the active ledger, or wait as a
	// standby while another holds it. Needs NATS. Optional; default false.
	Replicate bool `yaml:"replicate" flag:"replicate"`
	// Standby starts the ledger as a standby (implies Replicate): apply
	// SPOOR_LOG, serve reads, take over when the active ledger's lease
	// expires. Optional; default false.
	Standby bool `yaml:"standby" flag:"standby"`
	// LeaseTTL is the lease's time-to-live, with Replicate: a standby
	// takes over this long after the active ledger stopped renewing; at
	// least 300ms. Optional; default 10s.
	LeaseTTL time.Duration `yaml:"lease_ttl" flag:"lease-ttl"`
	// LogMaxAge is how long SPOOR_LOG keeps a batch, with Replicate
	// (sealed envelopes and pseudonyms linger in NATS this long).
	// Optional; default 168h (7 days).
	LogMaxAge time.Duration `yaml:"log_max_age" flag:"log-max-age"`
	// AckWait is how long an ingest message may stay unacknowledged before
	// JetStream delivers it again; 0: JetStream's 30s. After a failover
	// the new active ledger gets the old one's unacknowledged messages
	// after it. Optional; default 0s.
	AckWait time.Duration `yaml:"ack_wait" flag:"ack-wait"`
	// KeySyncInterval is how often the data keys in NATS (SPOOR_DATAKEYS)
	// are brought in line with the active ledger's, with Replicate.
	// Optional; default 1m.
	KeySyncInterval time.Duration `yaml:"key_sync_interval" flag:"key-sync-interval"`

	// Log is the Merkle log backend: pebble (the tiles in the ledger's own
	// store) or trillian (also a Trillian PREORDERED_LOG tree, which must
	// agree before each checkpoint is signed and serves the proofs; needs
	// Trillian and TreeID). Optional; default "pebble".
	Log string `yaml:"log" flag:"log"`
	// Trillian is the Trillian log server's gRPC address (host:port), with
	// Log trillian. Optional; default "".
	Trillian string `yaml:"trillian" flag:"trillian"`
	// TreeID is the id of the PREORDERED_LOG tree, with Log trillian
	// (createtree --tree_type=PREORDERED_LOG prints it); one tree per log.
	// Optional; default 0.
	TreeID int64 `yaml:"tree_id" flag:"tree-id"`

	// WitnessInterval is, with a witness policy in the covenant, the least
	// time between two rounds of add-checkpoint requests to the witnesses.
	// Optional; default 250ms.
	WitnessInterval time.Duration `yaml:"witness_interval" flag:"witness-interval"`
	// WitnessTimeout is how long to wait for one witness's answer.
	// Optional; default 1s.
	WitnessTimeout time.Duration `yaml:"witness_timeout" flag:"witness-timeout"`
	// WitnessMaxAge: /healthz reports degraded when the log grew and
	// nothing was witnessed for this long. Optional; default 1m.
	WitnessMaxAge time.Duration `yaml:"witness_max_age" flag:"witness-max-age"`
	// WitnessFailOpen, during a witness policy's roll-out only, serves the
	// signed head as /checkpoint, marked as not witnessed, while it is
	// newer than the witnessed one; inzage answers still wait for a
	// witnessed checkpoint. Optional; default false (fail closed).
	WitnessFailOpen bool `yaml:"witness_fail_open" flag:"witness-fail-open"`

	// NoSubjectIndex keeps no subject index: no index heads, and no
	// inzage answer proves that it is complete. The index is built over
	// the whole log when it is turned on again. Optional; default false
	// (the index is kept).
	NoSubjectIndex bool `yaml:"no_subject_index" flag:"no-subject-index"`

	// NotifyKeyFile is the path of the notification key file (spoor keygen
	// --notify), whose public key the covenant lists as notification_key.
	// Optional; default "": no notifications.
	NotifyKeyFile string `yaml:"notify_key_file" flag:"notify-key"`
	// NotifyFGWebhook is the FG's https webhook URL for alarms (fork,
	// rollback, retention overdue). Optional; default "": alarms are only
	// logged and counted.
	NotifyFGWebhook string `yaml:"notify_fg_webhook" flag:"notify-fg-webhook"`
	// NotifyAllowPrivate lists, comma-separated, the address ranges (CIDR)
	// a webhook may resolve to although they are not public. Optional;
	// default "": only public addresses.
	NotifyAllowPrivate string `yaml:"notify_allow_private" flag:"notify-allow-private"`
	// NotifyDevHTTPLoopback allows http:// webhooks, and any on loopback
	// addresses: for development and tests only. Optional; default false.
	NotifyDevHTTPLoopback bool `yaml:"notify_dev_http_loopback" flag:"notify-dev-http-loopback"`
	// NotifyCA is a PEM file of the CAs a webhook's certificate must chain
	// to, instead of the system's. Optional; default "".
	NotifyCA string `yaml:"notify_ca" flag:"notify-ca"`
	// NotifyMinBackoff is the wait after a webhook's first failure,
	// doubled per failure with jitter. Optional; default 1s.
	NotifyMinBackoff time.Duration `yaml:"notify_min_backoff" flag:"notify-min-backoff"`
	// NotifyMaxBackoff caps the wait between attempts. Optional; default
	// 10m.
	NotifyMaxBackoff time.Duration `yaml:"notify_max_backoff" flag:"notify-max-backoff"`
	// NotifyMaxAttempts is how many attempts a notification gets before it
	// goes to the dead-letter list (DATA/notify/dead). Optional; default 12.
	NotifyMaxAttempts int `yaml:"notify_max_attempts" flag:"notify-max-attempts"`
	// NotifyTimeout bounds one attempt. Optional; default 10s.
	NotifyTimeout time.Duration `yaml:"notify_timeout" flag:"notify-timeout"`
}

// configField is one field of Config: its index, YAML key and flag.
type configField struct {
	index     int
	key, flag string
}

// configFields lists the fields of Config from their tags.
func configFields() []configField {
	t := reflect.TypeFor[Config]()
	out := make([]configField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		out = append(out, configField{index: i, key: f.Tag.Get("yaml"), flag: f.Tag.Get("flag")})
	}
	return out
}

// loadConfig reads a configuration file. It returns the settings and, for
// each key the file gives, its line (a key left out keeps its flag's
// default, even when the zero value would differ from it).
func loadConfig(path string) (*Config, map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read the configuration: %w", err)
	}
	c, lines, err := parseConfig(b)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	if l, ok := lines["nats"]; ok {
		for u := range strings.SplitSeq(c.NATS, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err == nil && pu.User != nil {
				if _, ok := pu.User.Password(); ok {
					return nil, nil, fmt.Errorf("configuration %s: line %d: the nats URL holds a password; the file names secrets by path only: give nats_user and nats_password_file", path, l)
				}
			}
		}
	}
	return c, lines, nil
}

// parseConfig decodes b, one YAML mapping of known keys, and returns the
// line of each key. A file with no settings at all is allowed. Every value
// is a scalar, so checking the keys here is all KnownFields would do; a
// value of the wrong type fails in the decoding, with its line.
func parseConfig(b []byte) (c *Config, lines map[string]int, err error) {
	// yaml.v3 has internal panics on some malformed input (as the
	// covenant's parser notes): refuse the file, never crash.
	defer func() {
		if r := recover(); r != nil {
			c, lines, err = nil, nil, errors.New("the file is not valid YAML (the parser gave up)")
		}
	}()
	known := map[string]bool{}
	for _, f := range configFields() {
		known[f.key] = true
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return &Config{}, map[string]int{}, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("the file is not valid YAML: %w", err)
	}
	if err := dec.Decode(&yaml.Node{}); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("the file holds more than one YAML document (remove the second '---')")
	}
	lines = map[string]int{}
	if len(doc.Content) == 0 {
		return &Config{}, lines, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: want key: value lines (a YAML mapping)", top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		if !known[k.Value] {
			return nil, nil, fmt.Errorf("line %d: unknown key %q (a key is a flag of spoor serve with _ for -; see deploy/spoor.yaml)", k.Line, k.Value)
		}
		// "key:" with nothing after it would set the flag to "" (for
		// http, every interface on a random port): say "" when meant.
		if v := top.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return nil, nil, fmt.Errorf("line %d: %s has no value (write \"\" for an empty one, or leave the key out for the default)", k.Line, k.Value)
		}
		lines[k.Value] = k.Line
	}
	c = &Config{}
	if err := top.Decode(c); err != nil {
		return nil, nil, err
	}
	return c, lines, nil
}

// applyConfigFile sets every flag of cmd that the file at path gives and
// the command line does not. The flags' variables are what serve runs on,
// so nothing after this knows where a setting came from. It runs before
// cobra checks the required flags, so that data may come from the file.
func applyConfigFile(cmd *cobra.Command, path string) error {
	if path == "" {
		return nil
	}
	c, lines, err := loadConfig(path)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	v := reflect.ValueOf(c).Elem()
	for _, f := range configFields() {
		line, given := lines[f.key]
		if !given || fl.Changed(f.flag) {
			continue
		}
		flag := fl.Lookup(f.flag)
		if flag == nil {
			return fmt.Errorf("configuration %s: line %d: %s: spoor serve has no flag --%s", path, line, f.key, f.flag)
		}
		// Value.Set, not FlagSet.Set: the flag stays "not given", so what
		// depends on a flag being given on the command line (the memory
		// limit against GOMEMLIMIT) means the command line still.
		if err := flag.Value.Set(fmt.Sprint(v.Field(f.index).Interface())); err != nil {
			return fmt.Errorf("configuration %s: line %d: %s: %w", path, line, f.key, err)
		}
	}
	// --data is a required flag; a data folder from the file satisfies it.
	if _, given := lines["data"]; given && c.Data != "" && !fl.Changed("data") {
		if err := fl.SetAnnotation("data", cobra.BashCompOneRequiredFlag, []string{"false"}); err != nil {
			return err
		}
	}
	return nil
}
