package benchkit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/synth"
)

// signedEvent is one pre-signed event: the party that publishes it, its
// id and its canonical envelope.
type signedEvent struct {
	party string
	id    uuid.UUID
	env   []byte
}

// eventFile holds pre-signed events on disk, so that a million of them do
// not sit in the memory whose peak the bench reports. Each record is
// party length (1 byte), party, id (16 bytes), envelope length (4 bytes,
// big-endian), envelope.
type eventFile struct {
	path     string
	count    int
	envBytes int64
}

// presign generates n synthetic disclosures with gens in turn and signs each with
// its discloser's key, on every core, writing them to path. Signing is the
// publishing organisation's cost, so it happens before any timed window.
func presign(ctx context.Context, path string, gens []*synth.Generator, keys map[string]*events.PartyKey, n int, prog *progress) (*eventFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't create the event file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)

	const chunk = 512
	type job struct{ ds []*events.Disclosure }
	type result struct {
		evs []signedEvent
		err error
	}
	jobs := make(chan job, 4)
	results := make(chan result, 4)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(jobs)
		for done := 0; done < n; {
			k := min(chunk, n-done)
			ds := make([]*events.Disclosure, k)
			for i := range ds {
				ds[i], _ = gens[(done+i)%len(gens)].Next()
			}
			select {
			case jobs <- job{ds}:
			case <-ctx.Done():
				return
			}
			done += k
		}
	}()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r := result{evs: make([]signedEvent, 0, len(j.ds))}
				for _, d := range j.ds {
					k := keys[d.Discloser]
					if k == nil {
						r.err = fmt.Errorf("no key for party %q", d.Discloser)
						break
					}
					events.Seal(d, k)
					env, err := events.Sign(d, k)
					if err != nil {
						r.err = fmt.Errorf("couldn't sign a synthetic event: %w", err)
						break
					}
					id, err := uuid.Parse(d.ID)
					if err != nil {
						r.err = fmt.Errorf("synthetic event id: %w", err)
						break
					}
					r.evs = append(r.evs, signedEvent{party: d.Discloser, id: id, env: env})
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	ef := &eventFile{path: path}
	var hdr [4]byte
	for r := range results {
		if r.err != nil {
			return nil, r.err
		}
		for _, e := range r.evs {
			if len(e.party) > 255 {
				return nil, fmt.Errorf("party id %q is too long for the event file", e.party)
			}
			w.WriteByte(byte(len(e.party)))
			w.WriteString(e.party)
			w.Write(e.id[:])
			binary.BigEndian.PutUint32(hdr[:], uint32(len(e.env)))
			w.Write(hdr[:])
			if _, err := w.Write(e.env); err != nil {
				return nil, fmt.Errorf("couldn't write the event file: %w", err)
			}
			ef.count++
			ef.envBytes += int64(len(e.env))
		}
		prog.add(int64(len(r.evs)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("couldn't write the event file: %w", err)
	}
	// Written back now, in the untimed part: otherwise the kernel writes
	// the file's gigabytes back during the first timed windows, on the
	// same disk and cores the ledger is measured on.
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("couldn't write the event file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("couldn't write the event file: %w", err)
	}
	if ef.count != n {
		return nil, fmt.Errorf("signed %d events, wanted %d", ef.count, n)
	}
	return ef, nil
}

// errStop ends a read early without an error.
var errStop = errors.New("stop")

// read calls fn for the events with file positions [from, to), in order.
// Each event's envelope is a fresh slice the callee may keep.
func (ef *eventFile) read(ctx context.Context, from, to int, fn func(i int, e signedEvent) error) error {
	f, err := os.Open(ef.path)
	if err != nil {
		return fmt.Errorf("couldn't open the event file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var party [256]byte
	var hdr [20]byte
	for i := 0; i < to; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		pl, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("event file record %d: %w", i, err)
		}
		if _, err := io.ReadFull(r, party[:pl]); err != nil {
			return fmt.Errorf("event file record %d: %w", i, err)
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("event file record %d: %w", i, err)
		}
		n := int(binary.BigEndian.Uint32(hdr[16:]))
		if i < from {
			if _, err := r.Discard(n); err != nil {
				return fmt.Errorf("event file record %d: %w", i, err)
			}
			continue
		}
		e := signedEvent{party: string(party[:pl]), id: uuid.UUID(hdr[:16]), env: make([]byte, n)}
		if _, err := io.ReadFull(r, e.env); err != nil {
			return fmt.Errorf("event file record %d: %w", i, err)
		}
		if err := fn(i, e); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	return nil
}
