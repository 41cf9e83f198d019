package main

// Notifications in `spoor serve` (ledger/notify): when the covenant in
// force lists a notification_key and --notify-key names the file of its
// private half, the active ledger posts signed CloudEvents to each party's
// webhook (its refusals and findings) and to the FG's (alarms). These are
// its flags. The key is the operator's; the covenant lists its public half
// so that every receiver can check a request with the key the covenant
// published (choice recorded in docs/operations.md, "Notifications").

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/notify"
	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// notifyFlags are the --notify-* flags.
type notifyFlags struct {
	key          string
	fgWebhook    string
	allowPrivate string
	httpLoopback bool
	caFile       string
	minBackoff   time.Duration
	maxBackoff   time.Duration
	maxAttempts  int
	timeout      time.Duration
}

func (n *notifyFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&n.key, "notify-key", "", "the notification key file (spoor keygen --notify) whose public key the covenant lists as notification_key; without it no notifications are sent")
	fl.StringVar(&n.fgWebhook, "notify-fg-webhook", "", "the FG's https webhook URL for alarms (fork, rollback, retention overdue)")
	fl.StringVar(&n.allowPrivate, "notify-allow-private", "", "comma-separated address ranges (CIDR) a webhook may resolve to although they are not public, e.g. 10.20.0.0/16; default: none")
	fl.BoolVar(&n.httpLoopback, "notify-dev-http-loopback", false, "DEVELOPMENT ONLY: allow http:// webhooks and https ones on loopback addresses (127.0.0.0/8, ::1)")
	fl.StringVar(&n.caFile, "notify-ca", "", "CA certificates (PEM) a webhook's certificate must chain to, instead of the system's")
	fl.DurationVar(&n.minBackoff, "notify-min-backoff", notify.DefaultMinBackoff, "the wait after a webhook's first failure; doubled per failure, with jitter")
	fl.DurationVar(&n.maxBackoff, "notify-max-backoff", notify.DefaultMaxBackoff, "the longest wait between two attempts")
	fl.IntVar(&n.maxAttempts, "notify-max-attempts", notify.DefaultMaxAttempts, "attempts per notification before it goes to the dead-letter list (DIR/notify/dead)")
	fl.DurationVar(&n.timeout, "notify-timeout", notify.DefaultTimeout, "how long one attempt may take")
}

// notifier makes the notifier for l when the covenant lists a
// notification key; nil (and no error) when notifications are off.
func (n *notifyFlags) notifier(data string, l *ledger.Ledger, sc *events.SignedCovenant, log *slog.Logger) (*notify.Notifier, error) {
	listed, err := sc.Covenant.NotificationPublicKey()
	if err != nil {
		return nil, fmt.Errorf("the covenant's notification_key: %w", err)
	}
	if n.key == "" {
		if listed != nil {
			log.Warn("the covenant lists a notification key but --notify-key is not given: no notifications are sent")
		}
		return nil, nil
	}
	priv, err := notify.LoadKey(n.key)
	if err != nil {
		return nil, err
	}
	if listed == nil || !bytes.Equal(listed, priv.Public().(ed25519.PublicKey)) {
		return nil, errors.New("--notify-key: its public key is not the covenant's notification_key (a receiver checks signatures with the key the covenant lists)")
	}
	var allow []netip.Prefix
	for _, s := range strings.Split(n.allowPrivate, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--notify-allow-private %q: %w", s, err)
		}
		allow = append(allow, p)
	}
	var pool *x509.CertPool
	if n.caFile != "" {
		pem, err := os.ReadFile(n.caFile)
		if err != nil {
			return nil, fmt.Errorf("--notify-ca: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--notify-ca %s: no PEM certificate in it", n.caFile)
		}
	}
	if n.httpLoopback {
		log.Warn("--notify-dev-http-loopback: webhooks on loopback (and over http there) are allowed; never in production")
	}
	nt, err := notify.New(notify.Config{
		Dir: datadir.Dir(data).Notify(), Key: priv, Origin: sc.Covenant.Origin,
		PartyWebhook: func(party string) string {
			cur, _ := l.Covenant()
			if cur == nil {
				cur = sc
			}
			p, _ := cur.Covenant.Party(party)
			return p.Webhook
		},
		FGWebhook: n.fgWebhook, AllowHTTPLoopback: n.httpLoopback, AllowPrivate: allow, RootCAs: pool,
		MinBackoff: n.minBackoff, MaxBackoff: n.maxBackoff, MaxAttempts: n.maxAttempts, Timeout: n.timeout, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("notifications on", "key_id", webhook.KeyID(priv.Public().(ed25519.PublicKey)), "fg_webhook", n.fgWebhook != "")
	return nt, nil
}

// alarmer turns the witnessing loop's alarms into notices for the FG; nil
// when notifications are off.
func alarmer(nt *notify.Notifier, l *ledger.Ledger, log *slog.Logger) func(kind, witness string, logSize, witnessSize uint64) {
	if nt == nil {
		return nil
	}
	return func(kind, witness string, logSize, witnessSize uint64) {
		a := webhook.AlarmData{Kind: kind, TreeSize: logSize, WitnessSize: witnessSize, Witness: witness}
		err := nt.Alarm(time.Now(), a)
		if errors.Is(err, webhook.ErrBadData) {
			// A witness name the wire format does not allow (it names
			// only ids): the alarm goes without it.
			a.Witness = ""
			err = nt.Alarm(time.Now(), a)
		}
		if err != nil {
			log.Error("couldn't queue the alarm notification", "kind", kind, "witness", witness, "err", err)
		}
	}
}
