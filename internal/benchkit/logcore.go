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
func (r *rig) logCore(ctx context.Context, pool []ledger.Submission, rep *Report) error {
	defer profileAs(ctx, "logcore")()
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

	rep.LogCore.What = fmt.Sprintf("ledger.Submit, %d events per call, %d calls in flight; each event one of %d pooled real envelopes with a fresh id", perBatch, inFlight, len(pool))
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

	r.prog.phase("log core", int64(n))
	w := startWindow()
	var submitErr error
	for i := 0; i < n && submitErr == nil; i += perBatch {
		batch := make([]ledger.Submission, min(perBatch, n-i))
		for j := range batch {
			k := i + j
			src := pool[k%len(pool)]
			d := *src.Disclosure
			u, err := uuid.Parse(d.ID)
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
	rep.LogCore.Entries = n
	rep.LogCore.Seconds = wall.Seconds()
	rep.LogCore.EntriesPerSec = perSec(n, wall)
	rep.LogCore.CPUMicros = micros(cpu, n)
	return nil
}
