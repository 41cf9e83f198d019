// Package client submits a log's checkpoints to the witnesses of its
// witness policy (C2SP tlog-witness add-checkpoint) and gathers their
// cosignatures until the policy's quorum is met.
//
// Data flow: the log hands Gather a checkpoint it has published and the size
// of its own tree; Gather asks every witness of the policy in parallel, at
// most one request in flight per witness. For each witness, Submit sends
// "old <size the witness is believed to hold>", a consistency proof from
// that size (from the log's ProofFunc) and the checkpoint, then reads the
// answer:
//
//   - 200: the cosignature lines, verified against the witness's key from
//     the policy before they are returned;
//   - 409 with a size (text/x.tlog.size): the witness holds another size;
//     Submit resends from that size, at most MaxResends times, backing off
//     10 to 250 ms; a size above the log's own tree is a RollbackAlarm (the
//     witness cosigned a tree this log does not have);
//   - 422, or a 409 with an empty body or echoing the request's own old
//     size: a ForkAlarm (the witness holds another tree at a size this log
//     has), never retried;
//   - anything else, or no answer within Timeout: a *StatusError or the
//     context's error, for the next checkpoint to try again.
//
// Gather returns once the quorum is met and a short greedy window for more
// has passed, or once every witness has answered. The client remembers each
// witness's size between calls, so the next checkpoint is sent with the
// right old size and proof; a new client starts from old 0 and learns it.
//
// It imports nothing of the ledger: the ledger gives it checkpoints and a
// ProofFunc (its ConsistencyProof).
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// Defaults of Config.
const (
	DefaultTimeout      = time.Second
	DefaultMaxResends   = 3
	DefaultGreedyWindow = 50 * time.Millisecond
	minBackoff          = 10 * time.Millisecond
	maxBackoff          = 250 * time.Millisecond
	// maxResponseBytes bounds what is read of an answer: cosignature lines
	// are well under a kilobyte each.
	maxResponseBytes = 64 << 10
)

var (
	// ErrFork is wrapped by every *ForkAlarm.
	ErrFork = errors.New("witness client: fork alarm")
	// ErrRollback is wrapped by every *RollbackAlarm.
	ErrRollback = errors.New("witness client: rollback alarm")
	// ErrWitnessAhead means the witness holds a newer checkpoint of this
	// log than the one sent (within the log's tree): not an alarm; send a
	// newer checkpoint.
	ErrWitnessAhead = errors.New("witness client: the witness holds a newer checkpoint")
	// ErrTooManyConflicts means the witness answered 409 more than
	// MaxResends times for one checkpoint.
	ErrTooManyConflicts = errors.New("witness client: too many 409 answers for one checkpoint")
	// ErrBadCosignature means a 200 answer held no cosignature that
	// verifies under the witness's key from the policy.
	ErrBadCosignature = errors.New("witness client: the answer holds no valid cosignature")
	// ErrNoURL means the policy gives the witness no URL to send to.
	ErrNoURL = errors.New("witness client: the policy gives the witness no URL")
	// ErrUnknownWitness means the policy has no witness by that name.
	ErrUnknownWitness = errors.New("witness client: no such witness in the policy")
)

// ForkAlarm is a witness's statement that it holds another tree at a size
// this log has: a split view, or a witness that lost or forged its state.
type ForkAlarm struct {
	Witness string
	// Status is the HTTP status (422 or 409).
	Status int
	// OldSize is the old size the request was sent with; Size is the
	// checkpoint's size.
	OldSize, Size uint64
}

func (e *ForkAlarm) Error() string {
	return fmt.Sprintf("%s: witness %s answered %d to old %d for the checkpoint of size %d", ErrFork, e.Witness, e.Status, e.OldSize, e.Size)
}

// Unwrap lets errors.Is find ErrFork.
func (e *ForkAlarm) Unwrap() error { return ErrFork }

// RollbackAlarm is a witness holding a checkpoint larger than the log's own
// tree: it cosigned a tree this log does not have (a backup restored
// behind the witnesses, or another log signing with this log's key).
type RollbackAlarm struct {
	Witness     string
	WitnessSize uint64
	LogSize     uint64
}

func (e *RollbackAlarm) Error() string {
	return fmt.Sprintf("%s: witness %s holds size %d, the log's tree has %d", ErrRollback, e.Witness, e.WitnessSize, e.LogSize)
}

// Unwrap lets errors.Is find ErrRollback.
func (e *RollbackAlarm) Unwrap() error { return ErrRollback }

// StatusError is an answer the protocol gives no meaning for the client to
// act on (400, 403, 404, 413, 429, 5xx): the next checkpoint tries again.
type StatusError struct {
	Witness string
	Status  int
	// Body is the start of the answer, for the operator's log.
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness client: witness %s answered %d: %s", e.Witness, e.Status, e.Body)
}

// ProofFunc returns the consistency proof from the tree of size oldSize to
// that of newSize (0 < oldSize < newSize), as the ledger's
// ConsistencyProof does.
type ProofFunc func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)

// Config configures a Client. Policy and Proof are required.
type Config struct {
	// Policy names the witnesses, their keys and URLs, and the quorum.
	// Witnesses without a URL are not asked.
	Policy *events.WitnessPolicy
	// Proof gives consistency proofs.
	Proof ProofFunc
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Timeout bounds each request to one witness; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxResends bounds the resends after 409 per checkpoint and witness;
	// 0 means DefaultMaxResends.
	MaxResends int
	// GreedyWindow is how long Gather waits for more cosignatures once the
	// quorum is met; 0 means DefaultGreedyWindow.
	GreedyWindow time.Duration
}

// Client sends checkpoints to a policy's witnesses. It is safe for
// concurrent use; it keeps one request in flight per witness.
type Client struct {
	cfg     Config
	remotes []*remote
}

// remote is one witness and what the client knows of it.
type remote struct {
	w    events.PolicyWitness
	busy chan struct{} // one request in flight
	mu   sync.Mutex
	size uint64 // the size the witness is believed to hold
}

// New returns a client for cfg's policy.
func New(cfg Config) (*Client, error) {
	if cfg.Policy == nil || cfg.Proof == nil {
		return nil, errors.New("witness client: Config needs a Policy and a Proof function")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResends <= 0 {
		cfg.MaxResends = DefaultMaxResends
	}
	if cfg.GreedyWindow <= 0 {
		cfg.GreedyWindow = DefaultGreedyWindow
	}
	c := &Client{cfg: cfg}
	for _, w := range cfg.Policy.Witnesses {
		c.remotes = append(c.remotes, &remote{w: w, busy: make(chan struct{}, 1)})
	}
	return c, nil
}

// Cosignature is one witness's verified cosignature of a checkpoint.
type Cosignature struct {
	Witness string
	// Lines are the witness's signature lines ("— name base64\n"), ready to
	// append to the checkpoint's signature block.
	Lines []byte
	// Time is the time in the cosignature.
	Time time.Time
}

// Submit sends cp (a checkpoint of the log whose own tree has logSize
// leaves, logSize >= cp.Size) to the named witness, waiting for that
// witness's request in flight, if any, to finish first.
func (c *Client) Submit(ctx context.Context, name string, cp *verifier.Checkpoint, logSize uint64) (*Cosignature, error) {
	for _, r := range c.remotes {
		if r.w.Name == name {
			select {
			case r.busy <- struct{}{}:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			defer func() { <-r.busy }()
			return c.submit(ctx, r, cp, max(logSize, cp.Size))
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownWitness, name)
}

// submit runs the add-checkpoint exchange with one witness, resending
// after 409 from the size it reports.
func (c *Client) submit(ctx context.Context, r *remote, cp *verifier.Checkpoint, logSize uint64) (*Cosignature, error) {
	if r.w.URL == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoURL, r.w.Name)
	}
	r.mu.Lock()
	old := r.size
	r.mu.Unlock()
	for resends := 0; ; resends++ {
		if old > cp.Size {
			if old > logSize {
				return nil, &RollbackAlarm{Witness: r.w.Name, WitnessSize: old, LogSize: logSize}
			}
			return nil, fmt.Errorf("%w: witness %s holds %d, the checkpoint has %d", ErrWitnessAhead, r.w.Name, old, cp.Size)
		}
		req := &witness.AddCheckpointRequest{OldSize: old, Checkpoint: cp.Note}
		if old > 0 && old < cp.Size {
			proof, err := c.cfg.Proof(ctx, old, cp.Size)
			if err != nil {
				return nil, fmt.Errorf("witness client: consistency proof %d -> %d: %w", old, cp.Size, err)
			}
			req.Proof = proof
		}
		status, body, err := c.post(ctx, r, req.Marshal())
		if err != nil {
			return nil, err
		}
		switch status {
		case http.StatusOK:
			cs, err := verifyCosignature(r.w, cp.Note, body)
			if err != nil {
				return nil, err
			}
			r.setSize(cp.Size)
			return cs, nil
		case http.StatusUnprocessableEntity:
			return nil, &ForkAlarm{Witness: r.w.Name, Status: status, OldSize: old, Size: cp.Size}
		case http.StatusConflict:
			held, ok := parseTlogSize(body)
			if !ok || held == old {
				// No size, or the very size the request claimed: the witness
				// says it holds another tree at that size.
				return nil, &ForkAlarm{Witness: r.w.Name, Status: status, OldSize: old, Size: cp.Size}
			}
			if held > logSize {
				return nil, &RollbackAlarm{Witness: r.w.Name, WitnessSize: held, LogSize: logSize}
			}
			r.setSize(held)
			old = held
			if resends == c.cfg.MaxResends {
				return nil, fmt.Errorf("%w: witness %s, last size %d", ErrTooManyConflicts, r.w.Name, held)
			}
			select {
			case <-time.After(min(minBackoff<<(2*resends), maxBackoff)):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		default:
			return nil, &StatusError{Witness: r.w.Name, Status: status, Body: firstLine(body)}
		}
	}
}

func (r *remote) setSize(size uint64) {
	r.mu.Lock()
	r.size = size
	r.mu.Unlock()
}

// post sends one add-checkpoint request within the per-witness timeout.
func (c *Client) post(ctx context.Context, r *remote, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.w.URL+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("witness client: witness %s: %w", r.w.Name, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("witness client: witness %s: %w", r.w.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("witness client: witness %s: reading the answer: %w", r.w.Name, err)
	}
	return resp.StatusCode, b, nil
}

// parseTlogSize reads a text/x.tlog.size body: a decimal size and a
// newline. The Content-Type is not insisted on: a witness that forgets it
// should not raise a fork alarm over a size it did state.
func parseTlogSize(b []byte) (uint64, bool) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// verifyCosignature keeps the lines of body by w's key, and returns them
// if they verify as a timestamped cosignature of checkpoint.
func verifyCosignature(w events.PolicyWitness, checkpoint, body []byte) (*Cosignature, error) {
	text := checkpoint[:bytes.LastIndex(checkpoint, []byte("\n\n"))+1]
	signed := append(append(bytes.Clone(text), '\n'), body...)
	n, err := note.Open(signed, note.VerifierList(w.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: witness %s: %w", ErrBadCosignature, w.Name, err)
	}
	if len(n.Sigs) != 1 {
		return nil, fmt.Errorf("%w: witness %s: %d lines by its key", ErrBadCosignature, w.Name, len(n.Sigs))
	}
	t, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		return nil, fmt.Errorf("%w: witness %s: %w", ErrBadCosignature, w.Name, err)
	}
	line := fmt.Sprintf("— %s %s\n", n.Sigs[0].Name, n.Sigs[0].Base64)
	return &Cosignature{Witness: w.Name, Lines: []byte(line), Time: t.UTC()}, nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	return strings.ToValidUTF8(string(line), "?")
}

// GatherResult is what Gather collected.
type GatherResult struct {
	// Cosignatures are the verified cosignatures, in the order they came.
	Cosignatures []Cosignature
	// Errors holds, by witness name, why a witness gave none (alarms
	// among them: errors.Is(err, ErrFork), errors.Is(err, ErrRollback)).
	// Witnesses still asked when Gather returned are absent from both.
	Errors map[string]error
	// Met is whether the cosignatures meet the policy's quorum.
	Met bool
}

// Gather asks every witness of the policy that has a URL for a cosignature
// of cp, in parallel, and returns once the quorum is met and the greedy
// window has passed, or every witness has answered, or ctx is done. When
// the quorum is not met it returns the result and an error wrapping
// verifier.ErrQuorumNotMet. Requests still in flight when it returns are
// cancelled.
func (c *Client) Gather(ctx context.Context, cp *verifier.Checkpoint, logSize uint64) (*GatherResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		name string
		cs   *Cosignature
		err  error
	}
	answers := make(chan answer, len(c.remotes))
	for _, r := range c.remotes {
		go func() {
			cs, err := c.Submit(ctx, r.w.Name, cp, logSize)
			answers <- answer{r.w.Name, cs, err}
		}()
	}
	res := &GatherResult{Errors: map[string]error{}}
	cosigned := map[string]bool{}
	var greedy <-chan time.Time
	for range c.remotes {
		select {
		case a := <-answers:
			if a.err != nil {
				res.Errors[a.name] = a.err
				continue
			}
			res.Cosignatures = append(res.Cosignatures, *a.cs)
			cosigned[a.name] = true
			if !res.Met && c.cfg.Policy.Met(func(n string) bool { return cosigned[n] }) {
				res.Met = true
				greedy = time.After(c.cfg.GreedyWindow)
			}
			continue
		case <-greedy:
		case <-ctx.Done():
		}
		break
	}
	if !res.Met {
		return res, fmt.Errorf("%w: %d cosignatures, %d witnesses without", verifier.ErrQuorumNotMet, len(res.Cosignatures), len(res.Errors))
	}
	return res, nil
}
