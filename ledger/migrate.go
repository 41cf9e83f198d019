package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
)

// migrateBatch is how many old index entries one migration commit
// converts: small enough that a crash loses little, large enough that the
// fsyncs do not dominate.
const migrateBatch = 4096

// errMigrateChunk stops a migration scan once it has a chunk.
var errMigrateChunk = errors.New("ledger: migration chunk full")

// migrateEventIDs converts a store written before event ids were scoped
// per discloser (keys.go): every old id index entry ('i' id) becomes the
// entry of its discloser ('d' id discloser), read from the stored
// envelope; an entry whose envelope was erased (the discloser is no longer
// known) becomes a reserved id ('x' id), which keeps the id taken for every
// party. Old rejection records ('r' id) move under their party, without
// their message (written before messages stopped quoting what the sender
// chose).
//
// Each chunk is one atomic commit that deletes the old entries it
// converts, so a crash in the middle leaves a store that the next Open
// continues from; on a migrated store both scans find nothing. It runs
// before the sequencer starts (Open, OpenStandby, Promote: a standby may
// apply batches of an active ledger that did not migrate yet), and never
// goes through the Replicator: each replica migrates its own store.
func (l *Ledger) migrateEventIDs(ctx context.Context) error {
	start := time.Now()
	ids, reserved, err := l.migrateOldIDs(ctx, start)
	if err != nil {
		return err
	}
	rejections, err := l.migrateOldRejections(ctx)
	if err != nil {
		return err
	}
	if ids+reserved+rejections > 0 {
		l.log.Info("event ids are now per discloser: store migrated",
			"ids", ids, "reserved_ids", reserved, "rejections", rejections, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// oldIDEntry is one 'i' entry being migrated.
type oldIDEntry struct {
	key       []byte
	idx       uint64
	discloser string // "" when the envelope is gone
	err       error
}

func (l *Ledger) migrateOldIDs(ctx context.Context, start time.Time) (ids, reserved int, err error) {
	lastLog := start
	for {
		var chunk []oldIDEntry
		err := l.store.Scan(ctx, []byte{tagOldEventID}, []byte{tagOldEventID + 1}, func(k, v []byte) error {
			if len(k) != 17 || len(v) != 8 {
				return fmt.Errorf("old event id index entry of %d bytes: %w", len(k), ErrCorrupt)
			}
			chunk = append(chunk, oldIDEntry{key: bytes.Clone(k), idx: binary.BigEndian.Uint64(v)})
			if len(chunk) == migrateBatch {
				return errMigrateChunk
			}
			return nil
		})
		if err != nil && !errors.Is(err, errMigrateChunk) {
			return ids, reserved, fmt.Errorf("couldn't read the old event id index: %w", err)
		}
		if len(chunk) == 0 {
			return ids, reserved, nil
		}
		if ids+reserved == 0 {
			l.log.Info("migrating the event id index to ids per discloser (once)")
		}
		// Reading and decoding the envelopes is the work: on every core.
		parallel.For(len(chunk), 0, 64, func(i int) {
			c := &chunk[i]
			c.discloser, c.err = l.discloserOf(ctx, c.idx)
		})
		var b Batch
		for _, c := range chunk {
			if c.err != nil {
				return ids, reserved, fmt.Errorf("couldn't migrate the event id index entry of leaf %d: %w", c.idx, c.err)
			}
			v := binary.BigEndian.AppendUint64(nil, c.idx)
			if c.discloser == "" {
				b.Set(append([]byte{tagReservedID}, c.key[1:]...), v)
				reserved++
			} else {
				b.Set(append(append([]byte{tagEventID}, c.key[1:]...), c.discloser...), v)
				ids++
			}
			b.Delete(c.key)
		}
		if err := l.store.Commit(ctx, &b); err != nil {
			return ids, reserved, fmt.Errorf("couldn't commit a migrated part of the event id index: %w", err)
		}
		if time.Since(lastLog) >= time.Second {
			lastLog = time.Now()
			l.log.Info("migrating the event id index", "ids", ids, "reserved_ids", reserved,
				"took", time.Since(start).Round(time.Millisecond))
		}
	}
}

// discloserOf reads the discloser of the disclosure at leaf idx; "" when
// its envelope is gone (erased).
func (l *Ledger) discloserOf(ctx context.Context, idx uint64) (string, error) {
	body, err := l.store.Get(ctx, u64Key(tagEntry, idx))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	env, err := l.cfg.DataKeys.open(idx, body)
	if errors.Is(err, ErrKeyDestroyed) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return "", fmt.Errorf("stored envelope: %w", errors.Join(err, ErrCorrupt))
	}
	d, err := events.DecodeDisclosure(e.Payload)
	if err != nil {
		return "", fmt.Errorf("stored disclosure: %w", errors.Join(err, ErrCorrupt))
	}
	if !events.ValidPartyID(d.Discloser) {
		return "", fmt.Errorf("stored disclosure without a valid discloser: %w", ErrCorrupt)
	}
	return d.Discloser, nil
}

// metaRejectionsPerParty marks a store whose rejection records are all
// keyed per party, so that Open does not scan them again.
var metaRejectionsPerParty = []byte("mrejections-per-party")

// migrateOldRejections moves the rejection records keyed by event id alone
// under (event id, party), once.
func (l *Ledger) migrateOldRejections(ctx context.Context) (int, error) {
	if _, err := l.store.Get(ctx, metaRejectionsPerParty); err == nil {
		return 0, nil
	} else if !errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("couldn't read the rejection records' format: %w", err)
	}
	var b Batch
	n := 0
	prefix := []byte{tagRejection}
	err := l.store.Scan(ctx, prefix, prefixEnd(prefix), func(k, v []byte) error {
		if len(k) != 17 {
			return nil
		}
		var r Rejection
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("old rejection record: %w", errors.Join(err, ErrCorrupt))
		}
		party := r.Party
		if !events.ValidPartyID(party) {
			party = ""
		}
		r.Party, r.Message = party, ""
		nv, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("couldn't encode rejection: %w", err)
		}
		nk := append(bytes.Clone(k), party...)
		if party == "" {
			nk = append(nk, 0)
		}
		b.Set(nk, nv)
		b.Delete(bytes.Clone(k))
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("couldn't migrate the rejection records: %w", err)
	}
	b.Set(metaRejectionsPerParty, []byte{1})
	if err := l.store.Commit(ctx, &b); err != nil {
		return 0, fmt.Errorf("couldn't commit the migrated rejection records: %w", err)
	}
	return n, nil
}
