package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
)

// idFilter answers, from memory, whether an event id may already be logged.
//
// The sequencer looks up every new event id before logging it, and nearly
// every id is new. In Pebble a lookup that finds nothing still probes the
// memtables and, for every table that overlaps the key (each of the L0
// tables, one per lower level), opens an iterator and checks its Bloom
// filter: on a million-entry store that was about 12 µs of CPU per event, a
// third of the log core's work. This filter answers "certainly not logged"
// for all but about 0.1% of new ids without touching the store; a
// "perhaps" (a redelivery, a conflict, a false positive) goes to the store
// as before, so the store stays the only authority and a filter can only
// cost a lookup, never decide one.
//
// It is a chain of Bloom filters, each twice the capacity of the one before
// (a scalable Bloom filter): the sequencer never has to stop to resize, and
// the false-positive rate stays below the number of filters times
// idFilterFP. It is built at the sequencer's start from the store's event id
// index and kept by the sequencer alone (the only writer of that index), so
// it needs no lock: lookupEvents reads it on every core while nothing adds,
// and sequence adds in its serial pass.
type idFilter struct {
	filters []*bloom.BloomFilter
	// first is the first filter's capacity (idFilterFirst; tests take less).
	first uint
	// inLast is how many ids the newest filter holds, capLast its capacity.
	inLast, capLast uint
}

const (
	// idFilterFirst is the first filter's capacity (about 1.8 MB at
	// idFilterFP); each next one doubles it.
	idFilterFirst = 1 << 20
	// idFilterFP is each filter's false-positive rate at capacity.
	idFilterFP = 0.001
)

// add records an event id index key. On a nil filter (before the
// sequencer has built it) it does nothing.
func (f *idFilter) add(key []byte) {
	if f == nil {
		return
	}
	if len(f.filters) == 0 || f.inLast >= f.capLast {
		c := max(f.first, 1)
		if f.capLast > 0 {
			c = 2 * f.capLast
		}
		f.filters = append(f.filters, bloom.NewWithEstimates(c, idFilterFP))
		f.inLast, f.capLast = 0, c
	}
	f.filters[len(f.filters)-1].Add(key)
	f.inLast++
}

// mayContain reports whether key may have been added; false is certain.
// A nil filter (not built yet) knows nothing and says perhaps.
func (f *idFilter) mayContain(key []byte) bool {
	if f == nil {
		return true
	}
	for _, b := range f.filters {
		if b.Test(key) {
			return true
		}
	}
	return false
}

// loadIDFilter builds l.ids from the store's event id index (and counts
// the reserved ids). It runs on
// the sequencer goroutine before the first batch (after Open's recovery, or
// after a standby's promotion, when the store holds everything applied).
func (l *Ledger) loadIDFilter(ctx context.Context) error {
	start := time.Now()
	f := &idFilter{first: idFilterFirst}
	n, reserved := 0, 0
	err := l.store.Scan(ctx, []byte{tagEventID}, []byte{tagEventID + 1}, func(k, _ []byte) error {
		f.add(k)
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't read the event id index: %w", err)
	}
	// The ids reserved for every party (events erased before ids were
	// per discloser) share the filter under their own tag.
	err = l.store.Scan(ctx, []byte{tagReservedID}, []byte{tagReservedID + 1}, func(k, _ []byte) error {
		f.add(k)
		reserved++
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't read the reserved event ids: %w", err)
	}
	l.ids = f
	l.reservedIDs = reserved
	l.log.Info("event id filter loaded", "ids", n, "reserved_ids", reserved, "filters", len(f.filters), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
