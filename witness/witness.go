// Package witness is a C2SP tlog-witness: a party other than a log's
// operator (an organisation's FG, a neighbouring region, a university, the
// Autoriteit Persoonsgegevens) that cosigns a log's checkpoint only when it
// extends the last one it cosigned for that log, with its own timestamp. A
// log that shows one party one tree and another party another (a split
// view) cannot get both cosigned by the same witness, and the witness's
// time bounds from outside when a checkpoint existed.
//
// Data flows one way: a log (Spoor's ledger, or any log speaking the
// protocol) POSTs add-checkpoint with the size it believes the witness
// holds, a consistency proof and the signed checkpoint; the witness checks
// the log's signature against the key in its configuration, the proof
// against its stored state, writes the new state durably (state.go) and
// only then answers its cosignature/v1 line. It sees origin, size and root:
// no entry of the log.
//
// It imports nothing of the ledger: a witness is run by others than the
// operator, on a laptop if need be, with nothing but a state folder. Spoor's
// own implementation rather than transparency-dev/witness, because that
// library (a) trusts a first checkpoint at any old size and never checks a
// size-0 root, (b) answers a same-size fork 409 where tlog-witness v1.0.0
// says 422, and an oversized or 64-line request 400 alike, (c) logs with klog
// and keeps OpenTelemetry metrics in package globals, and (d) keeps no
// evidence of refusals. That library serves the tests as an independent
// implementation instead.
package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/verifier"
)

// Errors of an add-checkpoint, each answered with its status (Handler).
var (
	// ErrUnknownLog: the checkpoint's origin is not a configured log (404).
	ErrUnknownLog = errors.New("witness: unknown log")
	// ErrNoValidSignature: no valid signature by the log's key, or no
	// signature at all (403); signatures by other keys are ignored.
	ErrNoValidSignature = errors.New("witness: no valid signature by the log's key")
	// ErrMalformedCheckpoint: the checkpoint is not a signed note with an
	// origin, a size and a root (400).
	ErrMalformedCheckpoint = errors.New("witness: malformed checkpoint")
	// ErrOldSizeTooLarge: the old size is above the checkpoint's (400).
	ErrOldSizeTooLarge = errors.New("witness: old size above the checkpoint's size")
	// ErrBadProof: the consistency proof does not prove the checkpoint
	// extends the last one cosigned, or a proof was sent where none
	// belongs (422).
	ErrBadProof = errors.New("witness: consistency proof does not verify")
	// ErrFork: the checkpoint has the size of the last one cosigned but
	// another root (422): the log forked.
	ErrFork = errors.New("witness: same size as the last cosigned checkpoint, another root")
	// ErrEmptyTreeRoot: a size-0 checkpoint whose root is not SHA-256 of
	// nothing (422).
	ErrEmptyTreeRoot = errors.New("witness: size-0 checkpoint with another root than the empty tree's")
	// ErrPushback: too many requests in flight (429).
	ErrPushback = errors.New("witness: too many requests in flight")
)

// ConflictError is the answer to an old size that is not the size the
// witness holds (409, with that size): the client resends with it.
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness: the last checkpoint cosigned for this log has size %d", e.Size)
}

// LogConfig is one log the witness witnesses.
type LogConfig struct {
	// Origin is the log's origin, the checkpoint's first line.
	Origin string `yaml:"origin"`
	// VKey is the log's note verifier key (Ed25519).
	VKey string `yaml:"vkey"`
}

// Config configures a witness. Signer and StateDir are required.
type Config struct {
	// Signer is the witness's cosignature/v1 key
	// (transparency-dev/formats/note.NewSignerForCosignatureV1).
	Signer note.Signer
	// VKey is the witness's verifier key, shown on the status page.
	VKey string
	// Logs are the logs it witnesses.
	Logs []LogConfig
	// StateDir holds its state (state.go); one process at a time.
	StateDir string
	// Prefix is prepended to every path ("" serves at the root).
	Prefix string
	// MaxInFlight is how many add-checkpoint requests it works on at once
	// before answering 429; 0 means 64.
	MaxInFlight int
	// EvidencePerLog bounds the refused checkpoints kept per log; 0
	// means 256.
	EvidencePerLog int
	// HourlyPerLog bounds the hourly checkpoints kept per log; 0 means
	// 24*400 (some thirteen months).
	HourlyPerLog int
	// Logger receives its log lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock of the state's file names (the cosignature's time is
	// the signer's own clock); nil means time.Now.
	Now func() time.Time
}

// Witness is a tlog-witness. It is safe for concurrent use; requests for
// one log are decided one at a time.
type Witness struct {
	cfg      Config
	log      *slog.Logger
	store    *store
	logs     map[string]*logState
	inFlight chan struct{}
	metrics  *metrics
}

// logState is what the witness holds of one log.
type logState struct {
	cfg      LogConfig
	verifier note.Verifier

	mu     sync.Mutex // one decision at a time per log
	have   bool
	size   uint64
	root   [32]byte
	latest []byte // the last cosigned checkpoint with its cosignature
	at     time.Time
}

var emptyRoot = sha256.Sum256(nil)

// New opens the witness's state and returns it.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil || cfg.StateDir == "" {
		return nil, errors.New("witness: a signer and a state folder are required")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.EvidencePerLog <= 0 {
		cfg.EvidencePerLog = 256
	}
	if cfg.HourlyPerLog <= 0 {
		cfg.HourlyPerLog = 24 * 400
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	w := &Witness{cfg: cfg, log: logger, store: st, logs: map[string]*logState{},
		inFlight: make(chan struct{}, cfg.MaxInFlight), metrics: newMetrics()}
	for _, lc := range cfg.Logs {
		if _, dup := w.logs[lc.Origin]; dup {
			st.close()
			return nil, fmt.Errorf("witness: log %q is configured twice", lc.Origin)
		}
		v, err := note.NewVerifier(strings.TrimSpace(lc.VKey))
		if err != nil {
			st.close()
			return nil, fmt.Errorf("witness: log %q: verifier key: %w", lc.Origin, err)
		}
		ls := &logState{cfg: lc, verifier: v}
		raw, err := st.latest(lc.Origin)
		if err != nil {
			st.close()
			return nil, err
		}
		if raw != nil {
			// The state folder is the witness's own: what it wrote after
			// checking it is trusted, not checked again (so a log key
			// rotation does not orphan the state).
			text, _, _ := bytes.Cut(raw, []byte("\n\n"))
			cp, err := parseCheckpointText(append(text, '\n'))
			if err != nil || cp.origin != lc.Origin {
				st.close()
				return nil, fmt.Errorf("witness: the stored state of %q is unreadable: %v", lc.Origin, err)
			}
			ls.have, ls.size, ls.root, ls.latest = true, cp.size, cp.root, raw
		}
		w.logs[lc.Origin] = ls
		w.metrics.size.WithLabelValues(lc.Origin).Set(float64(ls.size))
	}
	return w, nil
}

// Close releases the state folder.
func (w *Witness) Close() error { return w.store.close() }

// checkpointText is a parsed checkpoint body.
type checkpointText struct {
	origin string
	size   uint64
	root   [32]byte
}

// parseCheckpointText parses a checkpoint's text: origin, decimal size,
// base64 root, then any extension lines, each line ending in a newline.
func parseCheckpointText(text []byte) (checkpointText, error) {
	var cp checkpointText
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return cp, fmt.Errorf("%w: the text does not end in a newline", ErrMalformedCheckpoint)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return cp, fmt.Errorf("%w: fewer than three lines", ErrMalformedCheckpoint)
	}
	size, err := parseSize([]byte(lines[1]))
	if err != nil {
		return cp, fmt.Errorf("%w: the size line", ErrMalformedCheckpoint)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != 32 {
		return cp, fmt.Errorf("%w: the root is not 32 bytes in standard base64", ErrMalformedCheckpoint)
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			return cp, fmt.Errorf("%w: an empty extension line", ErrMalformedCheckpoint)
		}
	}
	cp.origin, cp.size = lines[0], size
	copy(cp.root[:], h)
	return cp, nil
}

// unsigned reports whether checkpoint is a checkpoint's text with no
// signature line, with or without the blank line that would open the
// signature block. note.Open calls that malformed; the specification's "none
// of the signatures verify against a trusted key" reads on it as well, and
// answering it 403 like any other checkpoint the log did not sign tells the
// client what is missing.
func unsigned(checkpoint []byte) bool {
	if _, err := parseCheckpointText(checkpoint); err == nil {
		return true
	}
	text, ok := bytes.CutSuffix(checkpoint, []byte("\n"))
	if !ok {
		return false
	}
	_, err := parseCheckpointText(text)
	return err == nil
}

// Add decides one add-checkpoint request: on success it has stored the
// checkpoint durably as the log's latest and returns its cosignature
// line(s) ("— <name> <base64>\n"). Errors are the ones above; a
// *ConflictError carries the size the witness holds.
func (w *Witness) Add(ctx context.Context, req *AddCheckpointRequest) ([]byte, error) {
	origin, _, _ := bytes.Cut(req.Checkpoint, []byte("\n"))
	ls, ok := w.logs[string(origin)]
	if !ok {
		return nil, ErrUnknownLog
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(ls.verifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) || unsigned(req.Checkpoint) {
			return nil, ErrNoValidSignature
		}
		return nil, fmt.Errorf("%w: not a signed note", ErrMalformedCheckpoint)
	}
	cp, err := parseCheckpointText([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	if cp.origin != ls.cfg.Origin {
		return nil, ErrUnknownLog
	}
	switch {
	case req.OldSize > cp.size:
		return nil, ErrOldSizeTooLarge
	case cp.size == 0 && cp.root != emptyRoot:
		return nil, ErrEmptyTreeRoot
	case req.OldSize == 0 && len(req.Proof) > 0:
		return nil, fmt.Errorf("%w: a proof from old size 0 must be empty", ErrBadProof)
	}

	ls.mu.Lock()
	defer ls.mu.Unlock()
	if req.OldSize != ls.size {
		w.evidence(ls, req.Checkpoint, cp.size)
		return nil, &ConflictError{Size: ls.size}
	}
	switch {
	case ls.have && cp.size == ls.size:
		if cp.root != ls.root {
			w.evidence(ls, req.Checkpoint, cp.size)
			w.log.Error("witness: FORK: a checkpoint of the size last cosigned with another root",
				"origin", ls.cfg.Origin, "size", cp.size)
			return nil, ErrFork
		}
		if len(req.Proof) > 0 {
			return nil, fmt.Errorf("%w: a proof between equal sizes must be empty", ErrBadProof)
		}
	case ls.size == 0:
		// Nothing cosigned yet, or only the empty tree: nothing to prove.
	default:
		if err := verifier.VerifyConsistency(ls.size, cp.size, ls.root, cp.root, req.Proof); err != nil {
			w.evidence(ls, req.Checkpoint, cp.size)
			w.log.Error("witness: a consistency proof from the last cosigned checkpoint does not verify",
				"origin", ls.cfg.Origin, "old_size", ls.size, "size", cp.size)
			return nil, ErrBadProof
		}
	}

	sig, err := w.cfg.Signer.Sign([]byte(n.Text))
	if err != nil {
		return nil, fmt.Errorf("witness: couldn't cosign: %w", err)
	}
	var hash [4]byte
	binary.BigEndian.PutUint32(hash[:], w.cfg.Signer.KeyHash())
	line := fmt.Appendf(nil, "— %s %s\n", w.cfg.Signer.Name(), base64.StdEncoding.EncodeToString(append(hash[:], sig...)))
	stored := append(bytes.TrimRight(bytes.Clone(req.Checkpoint), "\n"), '\n')
	stored = append(stored, line...)
	// Durable before it is answered: the promise is only as good as this.
	if err := w.store.setLatest(ls.cfg.Origin, stored); err != nil {
		return nil, err
	}
	now := w.cfg.Now()
	ls.have, ls.size, ls.root, ls.latest, ls.at = true, cp.size, cp.root, stored, now
	w.metrics.size.WithLabelValues(ls.cfg.Origin).Set(float64(cp.size))
	if err := w.store.keep(ls.cfg.Origin, "hourly", hourName(now), stored, w.cfg.HourlyPerLog); err != nil {
		w.log.Warn("witness: couldn't keep the hourly checkpoint", "origin", ls.cfg.Origin, "err", err)
	}
	return line, nil
}

// evidence keeps a validly signed checkpoint the witness refused.
func (w *Witness) evidence(ls *logState, checkpoint []byte, size uint64) {
	if err := w.store.keep(ls.cfg.Origin, "evidence", evidenceName(w.cfg.Now(), size), checkpoint, w.cfg.EvidencePerLog); err != nil {
		w.log.Warn("witness: couldn't keep a refused checkpoint", "origin", ls.cfg.Origin, "err", err)
	}
}

// Latest returns the last checkpoint cosigned for origin, with the
// witness's cosignature, or nil.
func (w *Witness) Latest(origin string) []byte {
	ls, ok := w.logs[origin]
	if !ok {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.latest
}

// Handler serves the witness:
//
//	POST <prefix>/add-checkpoint                 the tlog-witness protocol
//	GET  <prefix>/<hex SHA-256 of origin>/checkpoint   the last cosigned checkpoint, for monitors
//	GET  <prefix>/                               a status page: name, key, logs and sizes
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+w.cfg.Prefix+"/add-checkpoint", w.serveAdd)
	mux.HandleFunc("GET "+w.cfg.Prefix+"/{origin}/checkpoint", w.serveLatest)
	mux.HandleFunc("GET "+w.cfg.Prefix+"/{$}", w.serveStatus)
	return mux
}

func (w *Witness) serveAdd(rw http.ResponseWriter, r *http.Request) {
	select {
	case w.inFlight <- struct{}{}:
		defer func() { <-w.inFlight }()
	default:
		w.metrics.outcome("", "pushback")
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, ErrPushback.Error(), http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		http.Error(rw, "couldn't read the request", http.StatusBadRequest)
		return
	}
	if len(body) > MaxRequestBytes {
		w.metrics.outcome("", "too_large")
		http.Error(rw, "the request is larger than 16 KiB", http.StatusRequestEntityTooLarge)
		return
	}
	req, err := ParseAddCheckpoint(body)
	if err != nil {
		w.metrics.outcome("", "bad_request")
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	line, err := w.Add(r.Context(), req)
	origin := w.knownOrigin(req.Checkpoint)
	var conflict *ConflictError
	switch {
	case err == nil:
		w.metrics.outcome(origin, "cosigned")
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = rw.Write(line)
	case errors.As(err, &conflict):
		w.metrics.outcome(origin, "conflict")
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		_, _ = fmt.Fprintf(rw, "%d\n", conflict.Size)
	case errors.Is(err, ErrUnknownLog):
		w.metrics.outcome(origin, "unknown_log")
		http.Error(rw, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrNoValidSignature):
		w.metrics.outcome(origin, "no_valid_signature")
		http.Error(rw, err.Error(), http.StatusForbidden)
	case errors.Is(err, ErrMalformedCheckpoint), errors.Is(err, ErrOldSizeTooLarge):
		w.metrics.outcome(origin, "bad_request")
		http.Error(rw, err.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrFork):
		w.metrics.outcome(origin, "fork")
		http.Error(rw, err.Error(), http.StatusUnprocessableEntity)
	case errors.Is(err, ErrBadProof), errors.Is(err, ErrEmptyTreeRoot):
		w.metrics.outcome(origin, "bad_proof")
		http.Error(rw, err.Error(), http.StatusUnprocessableEntity)
	default:
		w.metrics.outcome(origin, "error")
		w.log.Error("witness: add-checkpoint failed", "origin", origin, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
	}
}

// knownOrigin is the checkpoint's origin if it is a configured log, so that
// an origin a client chose never becomes a metric label.
func (w *Witness) knownOrigin(checkpoint []byte) string {
	origin, _, _ := bytes.Cut(checkpoint, []byte("\n"))
	if _, ok := w.logs[string(origin)]; ok {
		return string(origin)
	}
	return ""
}

func (w *Witness) serveLatest(rw http.ResponseWriter, r *http.Request) {
	want := r.PathValue("origin")
	for origin := range w.logs {
		h := sha256.Sum256([]byte(origin))
		if hex.EncodeToString(h[:]) == want {
			if cp := w.Latest(origin); cp != nil {
				rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
				rw.Header().Set("Cache-Control", "no-store")
				_, _ = rw.Write(cp)
				return
			}
		}
	}
	http.NotFound(rw, r)
}

func (w *Witness) serveStatus(rw http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "tlog-witness %s\nkey %s\n\n", w.cfg.Signer.Name(), w.cfg.VKey)
	origins := make([]string, 0, len(w.logs))
	for o := range w.logs {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	for _, o := range origins {
		ls := w.logs[o]
		ls.mu.Lock()
		size, at := ls.size, ls.at
		ls.mu.Unlock()
		h := sha256.Sum256([]byte(o))
		fmt.Fprintf(&b, "log %s\n  size %s\n  checkpoint %s/%s/checkpoint\n", o, strconv.FormatUint(size, 10), w.cfg.Prefix, hex.EncodeToString(h[:]))
		if !at.IsZero() {
			fmt.Fprintf(&b, "  last cosigned %s\n", at.UTC().Format(time.RFC3339))
		}
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(rw, b.String())
}

// metrics are the witness's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	size     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_witness_add_checkpoint_total",
			Help: "add-checkpoint requests by log (empty: not a configured log) and outcome"}, []string{"log", "outcome"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spoor_witness_log_size",
			Help: "size of the last checkpoint cosigned, by log"}, []string{"log"}),
	}
}

func (m *metrics) outcome(origin, outcome string) { m.requests.WithLabelValues(origin, outcome).Inc() }

// Metrics returns the witness's collectors, for the caller to register.
func (w *Witness) Metrics() []prometheus.Collector {
	return []prometheus.Collector{w.metrics.requests, w.metrics.size}
}
