// Package notify tells the people who must act: an organisation of its
// refused disclosures and of the covenant findings on its logged ones, the
// FG of the ledger's alarms (fork, rollback, retention overdue). Each
// notice is a CloudEvent (verifier/webhook, the NL GOV profile) posted to a
// webhook and signed with an HTTP Message Signature (RFC 9421, Ed25519) by
// the notification key the covenant lists.
//
// Data flow: ingest (after a batch's durable commit, before it acknowledges
// the messages), the witnessing loop and the retention job call Rejected,
// Findings and Alarm, which build the event and write it to the outbox, a
// folder in the data folder with one file per event (internal/durable:
// temporary file, fsync, rename, folder fsync). Only then do they return,
// so an event whose messages were acknowledged is in the outbox, and one
// that is not yet there comes again with the redelivered messages (at
// least once). Run, started by the active ledger only (a standby never
// delivers), posts each event to its target until the target answers 2xx;
// a failure is retried with exponential backoff and jitter, the same body
// (the same CloudEvent id) each time, re-signed at each attempt; after
// MaxAttempts the event moves to the dead-letter folder and is counted.
// Delivered events are removed. A SIGKILL at any point leaves each event
// either in the outbox (delivered again) or removed after its delivery.
//
// Targets come only from the covenant (a party's webhook) and the
// operator's configuration (the FG's); the URL is looked up at each
// attempt, so that a covenant version that changes it takes effect. Only
// https is allowed (http to a loopback address with AllowHTTPLoopback, for
// tests and development); redirects are not followed; the dialer refuses
// loopback, private, link-local and other non-public addresses at dial time
// (after DNS resolution, so a name that resolves anew to an internal
// address is refused too), unless the operator lists the range.
package notify

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// Defaults of Config.
const (
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultMaxAttempts = 12
	DefaultTimeout     = 10 * time.Second
)

// Config configures a Notifier. Dir, Key, Origin and PartyWebhook are
// required.
type Config struct {
	// Dir is the notifier's folder (DIR/notify): outbox/ and dead/ in it.
	Dir string
	// Key signs the requests; its public key must be the covenant's
	// notification_key (the caller checks).
	Key ed25519.PrivateKey
	// Origin is the log's origin, named in alarms.
	Origin string
	// Source is the CloudEvent source; "" means "urn:nld:spoor:" and the
	// origin.
	Source string
	// PartyWebhook returns the webhook URL of a party in the covenant in
	// force, "" when it has none.
	PartyWebhook func(party string) string
	// FGWebhook is the FG's webhook URL for alarms (operator's config);
	// "" sends no alarms.
	FGWebhook string
	// AllowHTTPLoopback allows http:// targets on loopback addresses (a
	// test or development flag; https is required otherwise).
	AllowHTTPLoopback bool
	// AllowPrivate lists address ranges a target may resolve to although
	// they are not public (loopback, RFC 1918, ULA, link-local, CGNAT).
	AllowPrivate []netip.Prefix
	// RootCAs, if set, are the CAs a target's certificate must chain to;
	// nil means the system's.
	RootCAs *x509.CertPool
	// MinBackoff and MaxBackoff bound the wait between attempts (doubling
	// from Min, capped at Max, with jitter); 0 means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how many attempts an event gets before it is dead
	// lettered; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Timeout bounds one attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Notifier queues notices durably and delivers them. Its methods are safe
// for concurrent use.
type Notifier struct {
	cfg     Config
	log     *slog.Logger
	box     *outbox
	client  *http.Client
	keyID   string
	metrics *metrics
	// wake is signalled by enqueue so that Run attempts a new event at
	// once.
	wake chan struct{}
}

// New opens (or creates) the notifier's folders and counts what waits.
func New(cfg Config) (*Notifier, error) {
	if cfg.Dir == "" || len(cfg.Key) != ed25519.PrivateKeySize || cfg.Origin == "" || cfg.PartyWebhook == nil {
		return nil, errors.New("notify: Config needs Dir, an Ed25519 Key, Origin and PartyWebhook")
	}
	if cfg.Source == "" {
		cfg.Source = "urn:nld:spoor:" + cfg.Origin
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FGWebhook != "" {
		if err := CheckURL(cfg.FGWebhook, cfg.AllowHTTPLoopback); err != nil {
			return nil, fmt.Errorf("notify: the FG's webhook: %w", err)
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	box, err := openOutbox(cfg.Dir)
	if err != nil {
		return nil, err
	}
	n := &Notifier{cfg: cfg, log: logger, box: box, keyID: webhook.KeyID(cfg.Key.Public().(ed25519.PublicKey)),
		metrics: newMetrics(), wake: make(chan struct{}, 1)}
	n.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // a proxy would dial for us, past the address check
			DialContext:         guardedDialer(cfg.AllowPrivate, cfg.AllowHTTPLoopback).DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: cfg.Timeout,
			MaxIdleConns:        16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// A redirect is not followed: the target is what the covenant
		// names, not what the target's server points at.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       cfg.Timeout,
	}
	pending, dead, err := box.counts()
	if err != nil {
		return nil, err
	}
	n.metrics.pending.Set(float64(pending))
	n.metrics.dead.Set(float64(dead))
	return n, nil
}

// KeyID is the keyid the notifier's signatures carry.
func (n *Notifier) KeyID() string { return n.keyID }

// Metrics returns the notifier's collectors for main to register.
func (n *Notifier) Metrics() []prometheus.Collector { return n.metrics.collectors() }

// Rejected queues a TypeRejected notice for party about rs (in order; the
// list is cut at webhook.MaxListed, the counts are not). It returns once
// the notice is durable. A party without a webhook is told nothing (and
// nil is returned).
func (n *Notifier) Rejected(ctx context.Context, party string, at time.Time, rs []webhook.RejectedEvent) error {
	if len(rs) == 0 || n.cfg.PartyWebhook(party) == "" {
		return nil
	}
	d := &webhook.RejectedData{Party: party, Counts: map[string]int{}}
	for _, r := range rs {
		d.Counts[r.Reason]++
	}
	d.Events = rs[:min(len(rs), webhook.MaxListed)]
	d.Truncated = len(rs) > webhook.MaxListed
	return n.enqueue(party, webhook.TypeRejected, at, d)
}

// Findings queues a TypeFindings notice for party about fs; as Rejected.
func (n *Notifier) Findings(ctx context.Context, party string, at time.Time, fs []webhook.FindingEvent) error {
	if len(fs) == 0 || n.cfg.PartyWebhook(party) == "" {
		return nil
	}
	d := &webhook.FindingsData{Party: party, Counts: map[string]int{}}
	for _, f := range fs {
		for _, h := range f.Rules {
			d.Counts[h.Rule]++
		}
	}
	d.Events = fs[:min(len(fs), webhook.MaxListed)]
	d.Truncated = len(fs) > webhook.MaxListed
	return n.enqueue(party, webhook.TypeFindings, at, d)
}

// Alarm queues a TypeAlarm notice for the FG (Origin is filled in). Without
// an FG webhook it only logs.
func (n *Notifier) Alarm(at time.Time, a webhook.AlarmData) error {
	a.Origin = n.cfg.Origin
	if n.cfg.FGWebhook == "" {
		n.log.Warn("alarm not notified: no FG webhook configured", "kind", a.Kind)
		return nil
	}
	return n.enqueue("", webhook.TypeAlarm, at, &a)
}

// enqueue builds the event with a fresh UUIDv7 id and writes it to the
// outbox durably; party "" is the FG.
func (n *Notifier) enqueue(party, typ string, at time.Time, data any) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("notify: couldn't make an event id: %w", err)
	}
	body, err := webhook.NewEvent(id.String(), n.cfg.Source, typ, at, data)
	if err != nil {
		return err
	}
	it := &item{ID: id.String(), Party: party, Type: typ, Body: body, NextAt: n.cfg.Now().UTC()}
	if err := n.box.put(it); err != nil {
		return err
	}
	n.metrics.queued.WithLabelValues(typ).Inc()
	n.metrics.pending.Inc()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers the outbox until ctx ends. Only the active ledger runs it.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		next, err := n.round(ctx)
		if err != nil {
			return err
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(0, next.Sub(n.cfg.Now()))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-n.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// round attempts every due event, oldest first, and returns when the
// earliest of the rest is due (zero: none waits).
func (n *Notifier) round(ctx context.Context) (time.Time, error) {
	items, err := n.box.list()
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, it := range items {
		if ctx.Err() != nil {
			return time.Time{}, nil
		}
		if it.NextAt.After(n.cfg.Now()) {
			if next.IsZero() || it.NextAt.Before(next) {
				next = it.NextAt
			}
			continue
		}
		if err := n.attempt(ctx, it); err != nil {
			return time.Time{}, err
		}
		if it.NextAt.After(n.cfg.Now()) && (next.IsZero() || it.NextAt.Before(next)) && !it.done {
			next = it.NextAt
		}
	}
	return next, nil
}

// attempt posts one event once and records the outcome durably: removed
// when delivered, moved to dead/ after the last attempt, else rescheduled.
// Only an outbox write that fails is returned.
func (n *Notifier) attempt(ctx context.Context, it *item) error {
	target := n.target(it.Party)
	var outcome string
	var derr error
	if target == "" {
		outcome, derr = "no_target", errors.New("no webhook configured for this target")
	} else {
		outcome, derr = n.post(ctx, target, it.Body)
	}
	if ctx.Err() != nil && derr != nil {
		// Stopping: the attempt does not count.
		return nil
	}
	n.metrics.attempts.WithLabelValues(it.Type, outcome).Inc()
	if derr == nil {
		if err := n.box.remove(it.ID); err != nil {
			return err
		}
		it.done = true
		n.metrics.pending.Dec()
		n.log.Info("notification delivered", "event_id", it.ID, "type", it.Type, "party", it.Party, "attempts", it.Attempts+1)
		return nil
	}
	it.Attempts++
	it.LastError = outcome
	if it.Attempts >= n.cfg.MaxAttempts {
		if err := n.box.bury(it); err != nil {
			return err
		}
		it.done = true
		n.metrics.pending.Dec()
		n.metrics.dead.Inc()
		n.metrics.deadLettered.WithLabelValues(it.Type).Inc()
		n.log.Error("notification dead-lettered after its last attempt", "event_id", it.ID, "type", it.Type, "party", it.Party,
			"attempts", it.Attempts, "outcome", outcome, "err", derr)
		return nil
	}
	it.NextAt = n.cfg.Now().Add(n.backoff(it.Attempts)).UTC()
	n.log.Warn("notification not delivered; will retry", "event_id", it.ID, "type", it.Type, "party", it.Party,
		"attempts", it.Attempts, "next_at", it.NextAt, "outcome", outcome, "err", derr)
	return n.box.put(it)
}

// target is the URL of party's webhook (from the covenant in force) or the
// FG's for party "".
func (n *Notifier) target(party string) string {
	if party == "" {
		return n.cfg.FGWebhook
	}
	return n.cfg.PartyWebhook(party)
}

// post sends body to target, signed, and returns a low-cardinality outcome
// and, unless the target answered 2xx, why not.
func (n *Notifier) post(ctx context.Context, target string, body []byte) (string, error) {
	if err := CheckURL(target, n.cfg.AllowHTTPLoopback); err != nil {
		return "bad_target", err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytesReader(body))
	if err != nil {
		return "bad_target", err
	}
	req.Header.Set("Content-Type", webhook.ContentType)
	if err := webhook.Sign(req, body, n.cfg.Key, n.keyID, n.cfg.Now()); err != nil {
		return "sign_failed", err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if errors.Is(err, errRefusedAddress) {
			return "refused_address", err
		}
		return "transport_error", err
	}
	defer resp.Body.Close()
	drain(resp)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return "delivered", nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return "redirect_refused", fmt.Errorf("the target answered %s; redirects are not followed", resp.Status)
	default:
		return "http_error", fmt.Errorf("the target answered %s", resp.Status)
	}
}

// backoff is the wait after the attempts-th failure: MinBackoff doubled
// per attempt, capped at MaxBackoff, drawn uniformly from its upper half
// (jitter, so that many events failing together do not retry together).
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.MinBackoff
	for i := 1; i < attempts && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	j, err := rand.Int(rand.Reader, big.NewInt(half+1))
	if err != nil {
		return d
	}
	return time.Duration(half + j.Int64())
}

// Pending lists the ids of the events waiting in the outbox, oldest first.
func (n *Notifier) Pending() ([]string, error) { return n.box.ids(outboxDir) }

// Dead lists the ids of the dead-lettered events, oldest first.
func (n *Notifier) Dead() ([]string, error) { return n.box.ids(deadDir) }
