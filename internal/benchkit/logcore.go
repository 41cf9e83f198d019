package benchkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/ledger"
)

// logCore measures the log core alone: ledger.Submit of opened events in
// batches of 1024 with up to 8 batches awaiting their commit (as ingest
// submits), through sequencing, leaf records, indices, tiles, a signed
// checkpoint and the Sync commit; no NATS and no signature checks. Its
// entries are the pool's real envelopes and opened payloads, each reused
// with a fresh event id so that every entry is a new leaf.
//
// It runs twice, each time on a new ledger. First with ids made as the run
// goes (UUIDv7 of the current time, as a live system's are: an event's id
// is made when the disclosure happens, shortly before it is logged), the
// figure the target is judged on. Then with ids whose time part is the
// pooled events' own, spread over weeks in random order: a backlog of old
// events, whose ids land all over the event-id index. That one is shown
// beside it.
func (r *rig) logCore(ctx context.Context, pool []ledger.Submission, rep *Report) error {
	defer profileAs(ctx, "logcore")()
	if err := r.logCoreRun(ctx, pool, true, &rep.LogCore); err != nil {
		return err
	}
	var old LogCore
	if err := r.logCoreRun(ctx, pool, false, &old); err != nil {
		return fmt.Errorf("with ids in random time order: %w", err)
	}
	rep.LogCore.RandomOrderPerSec, rep.LogCore.RandomOrderCPUMicros = old.EntriesPerSec, old.CPUMicros
	return nil
}

func (r *rig) logCoreRun(ctx context.Context, pool []ledger.Submission, fresh bool, lc *LogCore) error {
	const perBatch, inFlight = 1024, 8
	n := r.cfg.Events
	dir := filepath.Join(r.dir, "log-core")
	m, release, err := r.merkle(ctx)
	if err != nil {
		return err
	}
	defer release()
	l, s, err := r.openLedgerOn(ctx, dir, m)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer s.Close()
	defer l.Close()

	lc.What = fmt.Sprintf("ledger.Submit, %d events per call, %d calls in flight; each event one of %d pooled real envelopes with a new UUIDv7 id", perBatch, inFlight, len(pool))
	pending := make(chan *ledger.Pending, inFlight)
	waited := make(chan error, 1)
	go func() {
		for p := range pending {
			out, err := p.Wait(ctx)
			if err != nil {
				waited <- err
				for range pending {
				}
				return
			}
			for _, o := range out {
				if o.Err != nil || o.Duplicate {
					waited <- fmt.Errorf("log core entry not added: duplicate=%t err=%w", o.Duplicate, o.Err)
					for range pending {
					}
					return
				}
			}
			r.prog.add(int64(len(out)))
		}
		waited <- nil
	}()

	phase := "log core"
	if !fresh {
		phase = "log core, ids in random time order"
	}
	r.prog.phase(phase, int64(n))
	w := startWindow()
	var submitErr error
	for i := 0; i < n && submitErr == nil; i += perBatch {
		batch := make([]ledger.Submission, min(perBatch, n-i))
		for j := range batch {
			k := i + j
			src := pool[k%len(pool)]
			d := *src.Disclosure
			u, err := uuid.Parse(d.ID)
			if fresh {
				u, err = uuid.NewV7()
			}
			if err != nil {
				submitErr = err
				break
			}
			// Keep the UUIDv7 time and version; make the rest unique.
			binary.BigEndian.PutUint64(u[8:], uint64(k))
			u[8] = 0x80 | u[8]&0x3f
			d.ID = u.String()
			batch[j] = ledger.Submission{Envelope: src.Envelope, Disclosure: &d, Findings: src.Findings}
		}
		if submitErr != nil {
			break
		}
		p, err := l.Submit(ctx, batch)
		if err != nil {
			submitErr = err
			break
		}
		pending <- p
	}
	close(pending)
	werr := <-waited
	wall, cpu := w.stop()
	r.prog.end()
	if submitErr != nil {
		return submitErr
	}
	if werr != nil {
		return werr
	}
	lc.Entries = n
	lc.Seconds = wall.Seconds()
	lc.EntriesPerSec = perSec(n, wall)
	lc.CPUMicros = micros(cpu, n)
	return nil
}
