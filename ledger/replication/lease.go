package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseValue is the lease's record in LeaseBucket.
type leaseValue struct {
	Holder string `json:"holder"`
	// ExpiresMS is when the lease ends unless renewed, by the holder's
	// clock (Unix milliseconds).
	ExpiresMS int64 `json:"expires_ms"`
}

// Lease is one ledger's claim to be the active ledger of an origin: a key
// in LeaseBucket changed only by compare-and-set on its revision, so that
// of two ledgers racing for it exactly one wins.
//
// The holder renews it every TTL/3 (Keep). It counts itself the holder
// only until two thirds of the TTL after the start of its last successful
// renewal (Valid): a standby takes the lease only after the full TTL, so a
// third of the TTL covers clock skew between the machines and a publish in
// flight. The stream's expected-last-sequence check is the hard fence
// behind this soft one.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu         sync.Mutex
	rev        uint64
	validUntil time.Time
}

// NewLease returns the lease of origin for holder (a name unique to this
// process, e.g. host and a random suffix), with time-to-live ttl
// (DefaultLeaseTTL when 0).
func NewLease(s *Setup, origin, holder string, ttl time.Duration) *Lease {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	return &Lease{kv: s.Leases, key: leaseKey(origin), holder: holder, ttl: ttl, now: time.Now}
}

// TTL is the lease's time-to-live.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Holder is this process's holder name.
func (l *Lease) Holder() string { return l.holder }

// Valid reports whether this process may still act as the holder.
func (l *Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev != 0 && l.now().Before(l.validUntil)
}

func (l *Lease) value(start time.Time) []byte {
	b, _ := json.Marshal(leaseValue{Holder: l.holder, ExpiresMS: start.Add(l.ttl).UnixMilli()})
	return b
}

// TryAcquire takes the lease when nobody holds it or its holder let it
// expire, and reports whether this process now holds it. It returns the
// current holder's name when it does not.
func (l *Lease) TryAcquire(ctx context.Context) (bool, string, error) {
	start := l.now()
	e, err := l.kv.Get(ctx, l.key)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = l.kv.Create(ctx, l.key, l.value(start))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, "", nil
		}
	case err != nil:
		return false, "", fmt.Errorf("couldn't read the lease: %w", err)
	default:
		var v leaseValue
		if jerr := json.Unmarshal(e.Value(), &v); jerr == nil && v.Holder != l.holder && start.UnixMilli() < v.ExpiresMS {
			return false, v.Holder, nil
		}
		rev, err = l.kv.Update(ctx, l.key, l.value(start), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return false, "", nil
		}
	}
	if err != nil {
		return false, "", fmt.Errorf("couldn't take the lease: %w", err)
	}
	l.mu.Lock()
	l.rev, l.validUntil = rev, start.Add(l.ttl*2/3)
	l.mu.Unlock()
	return true, l.holder, nil
}

// Renew extends the lease by compare-and-set on the revision this process
// wrote last. ErrLeaseLost when another ledger changed it since.
func (l *Lease) Renew(ctx context.Context) error {
	start := l.now()
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev == 0 {
		return ErrLeaseLost
	}
	nrev, err := l.kv.Update(ctx, l.key, l.value(start), rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
		l.drop()
		return fmt.Errorf("another ledger changed the lease: %w", ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("couldn't renew the lease: %w", err)
	}
	l.mu.Lock()
	l.rev, l.validUntil = nrev, start.Add(l.ttl*2/3)
	l.mu.Unlock()
	return nil
}

func (l *Lease) drop() {
	l.mu.Lock()
	l.rev, l.validUntil = 0, time.Time{}
	l.mu.Unlock()
}

// Keep renews the lease every TTL/3 until ctx ends (nil) or the lease is
// lost: another ledger took it, or no renewal succeeded before Valid
// would turn false (ErrLeaseLost). The caller must then stop sequencing.
// A failed renewal (a NATS leader election, a lost connection) is retried
// every TTL/12, so one failure alone does not cost the lease.
func (l *Lease) Keep(ctx context.Context) error {
	wait := time.NewTimer(l.ttl / 3)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wait.C:
		}
		if !l.Valid() {
			l.drop()
			return fmt.Errorf("no renewal succeeded within two thirds of the lease's %s: %w", l.ttl, ErrLeaseLost)
		}
		rctx, cancel := context.WithTimeout(ctx, l.ttl/6)
		err := l.Renew(rctx)
		cancel()
		switch {
		case errors.Is(err, ErrLeaseLost):
			return err
		case err != nil:
			wait.Reset(l.ttl / 12)
		default:
			wait.Reset(l.ttl / 3)
		}
	}
}

// Release gives the lease up (a clean shutdown), so a standby need not wait
// for it to expire. It deletes the key only if this process still holds it.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev == 0 {
		return nil
	}
	l.drop()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("couldn't release the lease: %w", err)
	}
	return nil
}
