package main

// The replicated mode of spoor serve (--replicate, --standby): the ledger
// starts as a standby that applies SPOOR_LOG, takes the lease when nobody
// holds it (or its holder let it expire), catches up with the stream and
// only then becomes the active ledger: it sequences, ingests and answers
// receipts, and publishes every batch to SPOOR_LOG before anyone is told.
// See ledger/replication and docs/operations.md ("Replication and
// failover").

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/replication"
)

// replicaFlags are serve's replication flags.
type replicaFlags struct {
	replicate bool
	standby   bool
	leaseTTL  time.Duration
	logMaxAge time.Duration
	ackWait   time.Duration
	keySync   time.Duration
}

func (r *replicaFlags) add(fl *pflag.FlagSet) {
	fl.BoolVar(&r.replicate, "replicate", false, "replicate the ledger over the --nats cluster (stream SPOOR_LOG): take the lease and be the active ledger, or wait as a standby while another holds it")
	fl.BoolVar(&r.standby, "standby", false, "start as a standby (implies --replicate): apply SPOOR_LOG, serve reads, take over when the active ledger's lease expires")
	fl.DurationVar(&r.leaseTTL, "lease-ttl", replication.DefaultLeaseTTL, "with --replicate: the lease's time-to-live; a standby takes over this long after the active ledger stopped renewing")
	fl.DurationVar(&r.logMaxAge, "log-max-age", replication.DefaultMaxAge, "with --replicate: how long SPOOR_LOG keeps a batch (sealed envelopes and pseudonyms linger in NATS this long)")
	fl.DurationVar(&r.ackWait, "ack-wait", 0, "how long an ingest message may stay unacknowledged before JetStream delivers it again (default 30s); after a failover the new active gets the old one's unacknowledged messages after it")
	fl.DurationVar(&r.keySync, "key-sync-interval", time.Minute, "with --replicate: how often the data keys in NATS (SPOOR_DATAKEYS) are brought in line with the active ledger's")
}

func (r *replicaFlags) on() bool { return r.replicate || r.standby }

// check refuses replication without an external cluster, before anything
// touches the data folder.
func (r *replicaFlags) check(f *serveFlags) error {
	if !r.on() {
		return nil
	}
	if f.natsURL == "" {
		return errors.New("--replicate/--standby need --nats: replication runs over an external NATS cluster")
	}
	if r.leaseTTL < 300*time.Millisecond {
		return fmt.Errorf("--lease-ttl %s: give at least 300ms", r.leaseTTL)
	}
	return nil
}

// replicaRun is the replication of one serve process.
type replicaRun struct {
	f     *replicaFlags
	log   *slog.Logger
	nc    *nats.Conn
	setup *replication.Setup
	lease *replication.Lease
	pub   *replication.Publisher
}

// startReplication connects to the cluster, sets up SPOOR_LOG and the
// buckets, and prepares this process's lease and publisher.
func startReplication(ctx context.Context, log *slog.Logger, f *serveFlags, origin string) (*replicaRun, error) {
	opts, err := f.natsClient.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name("spoor-ledger-replication"), nats.MaxReconnects(-1))
	nc, err := nats.Connect(f.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect to NATS at %s: %w", redactURLs(f.natsURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("couldn't open JetStream: %w", err)
	}
	var setup *replication.Setup
	// Creating replicated streams can outlast one API timeout while the
	// cluster settles; try a few times.
	for attempt := 1; ; attempt++ {
		setup, err = replication.Ensure(ctx, js, replication.Config{Origin: origin, Replicas: f.replicas, MaxAge: f.repl.logMaxAge})
		if err == nil || attempt == 5 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	holder := strings.Trim(host+"-"+hex.EncodeToString(raw), "-")
	lease := replication.NewLease(setup, origin, holder, f.repl.leaseTTL)
	return &replicaRun{f: &f.repl, log: log, nc: nc, setup: setup, lease: lease,
		pub: replication.NewPublisher(setup, lease, log)}, nil
}

// openServeLedger opens the ledger: as a standby when replicating (it is
// promoted by replicaRun.run), else as the active one at once.
func openServeLedger(ctx context.Context, rr *replicaRun, cfg ledger.Config) (*ledger.Ledger, error) {
	if rr == nil {
		return ledger.Open(ctx, cfg)
	}
	cfg.Replicator = rr.pub
	return ledger.OpenStandby(ctx, cfg)
}

// run follows SPOOR_LOG as a standby until it holds the lease, then
// catches up, promotes the ledger and calls startActive (ingest,
// receipts, retention); from then on it keeps the lease and the data keys
// in NATS. It returns when ctx ends, or with an error that stops serve:
// a replicated batch that does not match its checkpoint, or the lease lost
// (this process may no longer sequence).
func (r *replicaRun) run(ctx context.Context, grp *errgroup.Group, l *ledger.Ledger, keys *ledger.DataKeys, startActive func()) error {
	fol := replication.NewFollower(r.setup, l, keys, r.log)
	poll := r.lease.TTL() / 3
	lastKeySync := time.Time{}
	r.log.Info("following SPOOR_LOG as a standby", "holder", r.lease.Holder(), "stream_seq", l.ReplicaPosition(), "tree_size", headSize(l))
	lastHolder := ""
	var lastLeaseCheck time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if _, err := fol.Step(ctx, poll); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ledger.ErrReplicaMismatch) || errors.Is(err, ledger.ErrReplicaOrder) || errors.Is(err, replication.ErrNeedBackup) {
				return fmt.Errorf("the standby stops: %w", err)
			}
			r.log.Warn("couldn't read SPOOR_LOG; retrying", "err", err)
			pause(ctx, poll)
			continue
		}
		if time.Since(lastKeySync) > r.f.keySync {
			if err := fol.KeySync(ctx); err != nil {
				r.log.Warn("couldn't sync data keys from NATS; retrying", "err", err)
			}
			lastKeySync = time.Now()
		}
		// The lease is checked every TTL/3, however busy the stream.
		if time.Since(lastLeaseCheck) < poll {
			continue
		}
		lastLeaseCheck = time.Now()
		ok, holder, err := r.lease.TryAcquire(ctx)
		if err != nil {
			r.log.Warn("couldn't check the lease; retrying", "err", err)
			pause(ctx, poll)
			continue
		}
		if !ok {
			if holder != lastHolder {
				r.log.Info("another ledger is active", "holder", holder)
				lastHolder = holder
			}
			continue
		}
		break
	}
	started := time.Now()
	r.log.Info("took the lease; catching up before sequencing", "holder", r.lease.Holder())
	// Keep the lease while catching up: a long tail must not let it lapse.
	keepCtx, stopKeep := context.WithCancel(ctx)
	keepDone := make(chan error, 1)
	go func() { keepDone <- r.lease.Keep(keepCtx) }()
	stopKeeping := func() error { stopKeep(); return <-keepDone }
	if err := fol.CatchUp(ctx, r.pub); err != nil {
		stopKeeping()
		return fmt.Errorf("couldn't catch up with SPOOR_LOG before sequencing: %w", err)
	}
	if err := fol.KeySync(ctx); err != nil {
		r.log.Warn("couldn't sync data keys from NATS before promotion", "err", err)
	}
	if err := l.Promote(ctx); err != nil {
		stopKeeping()
		return fmt.Errorf("couldn't become the active ledger: %w", err)
	}
	r.log.Info("this ledger is now the active one", "tree_size", headSize(l), "stream_seq", l.ReplicaPosition(),
		"took", time.Since(started).Round(time.Millisecond))
	startActive()
	grp.Go(func() error {
		t := time.NewTicker(r.f.keySync)
		defer t.Stop()
		for {
			if err := r.pub.KeySync(ctx, keys); err != nil && ctx.Err() == nil {
				r.log.Warn("couldn't sync data keys to NATS; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	if err := <-keepDone; err != nil {
		return fmt.Errorf("this ledger stops sequencing: %w", err)
	}
	return nil
}

// close releases the lease (after the sequencer stopped), so a standby
// takes over at once, and closes the connection.
func (r *replicaRun) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.lease.Release(ctx); err != nil {
		r.log.Warn("couldn't release the lease; a standby takes over when it expires", "err", err)
	}
	r.nc.Close()
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func headSize(l *ledger.Ledger) uint64 {
	if h := l.Head(); h != nil {
		return h.Size
	}
	return 0
}
