package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events/natsbus"
)

// rejectionDrops counts, per party, the rejections that the rejections
// stream's per-party cap (natsbus.StreamConfig.RejectedCapPerParty) pushes
// out: when a party's subject is full, each new rejection drops the party's
// oldest. JetStream reports no such drop, so the count is kept here: the
// party's count on the stream and its cap are read from the stream when
// its first rejection of this run is reported, and again at most once a
// refreshEvery while the subject is full (rejections also expire by age,
// which frees room unseen). It is exact while a flood lasts, and may count
// a few drops too many in the refreshEvery after expiries freed room.
type rejectionDrops struct {
	js      jetstream.JetStream
	dropped *prometheus.CounterVec

	mu      sync.Mutex
	parties map[string]*partyRejections
}

type partyRejections struct {
	// count is the party's rejections on the stream, with pending: those
	// reserved (take) and not yet published.
	count, pending, cap int64
	read                time.Time // when count and cap were read from the stream
}

// refreshEvery is how often a full party subject's count is read again.
const refreshEvery = time.Second

func newRejectionDrops(js jetstream.JetStream, dropped *prometheus.CounterVec) *rejectionDrops {
	return &rejectionDrops{js: js, dropped: dropped, parties: map[string]*partyRejections{}}
}

// take reserves room for one rejection of party about to be published,
// and reports whether the party's subject was full, so that publishing it
// drops the party's oldest. Rejections are reported from several batches
// at once: the reservation keeps their count right. A failure to read the
// stream reports false: the drop goes uncounted, the rejection is still
// published. Call published or failed after the publish.
func (d *rejectionDrops) take(ctx context.Context, party string) (full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parties[party]
	if p == nil || (p.count >= p.cap && time.Since(p.read) >= refreshEvery) {
		fresh, err := d.read(ctx, party)
		if err != nil {
			return false
		}
		if p != nil {
			// Reservations not yet published are not on the stream.
			fresh.count += p.pending
			fresh.pending = p.pending
		}
		p = fresh
		d.parties[party] = p
	}
	if p.cap > 0 && p.count >= p.cap {
		return true
	}
	p.count++
	p.pending++
	return false
}

// published records that a rejection of party that take reserved room for
// (full: what take said) is on the stream.
func (d *rejectionDrops) published(party string, full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if full {
		d.dropped.WithLabelValues(party).Inc()
		return
	}
	if p := d.parties[party]; p != nil && p.pending > 0 {
		p.pending--
	}
}

// failed releases what take reserved for a rejection that was not
// published.
func (d *rejectionDrops) failed(party string, full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.parties[party]; !full && p != nil && p.pending > 0 {
		p.pending--
		p.count--
	}
}

// read asks the stream for party's count and the per-subject cap.
func (d *rejectionDrops) read(ctx context.Context, party string) (*partyRejections, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := d.js.Stream(ctx, natsbus.RejectedStream)
	if err != nil {
		return nil, err
	}
	subject := natsbus.RejectedSubject(party)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, err
	}
	return &partyRejections{count: int64(info.State.Subjects[subject]), cap: info.Config.MaxMsgsPerSubject, read: time.Now()}, nil
}
