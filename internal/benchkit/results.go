package benchkit

import (
	"context"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// inzage times BuildBundle (subject index, envelopes, leaf records,
// inclusion proofs, and the bundle's own verification before it is handed
// out) for children spread over the synthetic population.
// It runs twice: right after ingest, while Pebble is still compacting what
// the full load wrote (on the same cores), into rep.Inzage; and once the
// store is compacted, the state it settles in when the burst is over, into
// rep.InzageCompacted (compacted set).
func (r *rig) inzage(ctx context.Context, l *ledger.Ledger, rep *Report, compacted bool) error {
	children := r.children()
	k := min(r.cfg.InzageSubjects, len(children))
	out := &rep.Inzage
	phase := "inzage bundles"
	if compacted {
		out = &rep.InzageCompacted
		phase = "inzage bundles, compacted store"
	}
	// The events stored: the log's leaves less the subject index's heads.
	heads, err := indexHeadsIn(ctx, l, 0, l.Head().Size)
	if err != nil {
		return err
	}
	out.StoredEvents = l.Head().Size - uint64(heads)
	defer profileAs(ctx, "inzage")()
	r.prog.phase(phase, int64(k))
	desk := answer.New(answer.Config{Ledger: l})
	ds := make([]time.Duration, 0, k)
	total := 0
	for i := range k {
		c := children[i*len(children)/k]
		now := time.Now().UTC().Truncate(time.Millisecond)
		req := answer.BundleRequest{
			IDType:       events.IDTypeBSN,
			Pseudonyms:   []verifier.SubjectPseudonym{{KeyID: r.demo.SubjectKey.ID, Pseudonym: c.Pseudonym}},
			Request:      verifier.InzageRequest{ID: fmt.Sprintf("bench-%d", i), Relation: verifier.RelationParent, RequestedAt: now.Add(-time.Hour), ReleasedAt: now},
			LogVkey:      r.logVkey,
			CosignerVkey: r.cosVkey,
		}
		t := time.Now()
		_, vb, err := desk.BuildBundle(ctx, req)
		if err != nil {
			return err
		}
		ds = append(ds, time.Since(t))
		total += len(vb.Disclosures)
		r.prog.add(1)
	}
	r.prog.end()
	out.Subjects = k
	if k > 0 {
		out.EventsPerSubject = float64(total) / float64(k)
	}
	out.Latency = latencyOf(ds)
	return nil
}

// audit measures the Merkle recomputation from the served entry bundles,
// then audit.Run over the ledger's store in full.
func (r *rig) audit(ctx context.Context, l *ledger.Ledger, rep *Report) error {
	head := l.Head()
	a := &rep.Audit
	a.Leaves = head.Size
	defer profileAs(ctx, "audit")()

	r.prog.phase("audit: merkle recomputation", int64(head.Size))
	rng := (&compact.RangeFactory{Hash: verifier.HashChildren}).NewEmptyRange(0)
	t := time.Now()
	for n := uint64(0); n*verifier.TileWidth < head.Size; n++ {
		w := min(verifier.TileWidth, head.Size-n*verifier.TileWidth)
		b, err := l.EntryBundle(ctx, n, int(w))
		if err != nil {
			return err
		}
		entries, err := verifier.ParseEntryBundle(b)
		if err != nil {
			return err
		}
		for _, e := range entries {
			h := verifier.LeafHash(e)
			if err := rng.Append(h[:], nil); err != nil {
				return err
			}
		}
		r.prog.add(int64(len(entries)))
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return err
	}
	el := time.Since(t)
	r.prog.end()
	if [32]byte(root) != head.Root {
		return fmt.Errorf("the recomputed root differs from the checkpoint's at size %d", head.Size)
	}
	a.MerkleLeavesPerSec = float64(head.Size) / el.Seconds()

	r.prog.phase("audit: signatures and rules", int64(head.Size))
	t = time.Now()
	ar, err := audit.Run(ctx, l.AuditSource(), audit.Config{
		Keys: r.keys, AdminVkey: r.demo.AdminVkey,
		Progress: func(done, _ uint64) { r.prog.set(int64(done)) },
	})
	el = time.Since(t)
	r.prog.end()
	if err != nil {
		return err
	}
	a.OK = ar.OK
	if !ar.OK {
		return fmt.Errorf("the audit of the bench's own log found %d problems (first: %s)", len(ar.Problems), ar.Problems[0].String())
	}
	a.Seconds = el.Seconds()
	a.EventsPerSec = float64(ar.TreeSize) / el.Seconds()
	for _, s := range rep.Stages {
		if s.Name == "open" {
			a.VerifyCeiling = s.Rate
		}
	}
	if a.VerifyCeiling > 0 {
		a.RatioToVerifyCeiling = a.EventsPerSec / a.VerifyCeiling
	}
	return nil
}

// compact compacts the ledger's whole keyspace (the ledger stays open).
func (r *rig) compact(ctx context.Context, p *pipelineRig) error {
	r.prog.phase("compaction", 0)
	err := p.store.Compact(ctx, []byte{0}, []byte{0xff})
	r.prog.end()
	return err
}

// disk closes the ledger, compacts its whole keyspace and sums its files.
func (r *rig) disk(ctx context.Context, p *pipelineRig, ef *eventFile, rep *Report) error {
	res := &rep.Resources
	heads, err := indexHeadsIn(ctx, p.l, 0, p.l.Head().Size)
	if err != nil {
		return err
	}
	// Per event: the index's heads are part of what it costs.
	res.StoredEvents = p.l.Head().Size - uint64(heads)
	p.watch.close()
	p.watch = nil
	if err := p.l.Close(); err != nil {
		return err
	}
	p.l = nil
	// Once more with the ledger closed: what it wrote since (its last
	// memtable) and the tables that its readers kept alive go too.
	if err := r.compact(ctx, p); err != nil {
		return err
	}
	if err := p.store.Close(); err != nil {
		return err
	}
	p.store = nil
	if res.LedgerDiskBytes, err = dirBytes(datadir.Dir(r.dir).Ledger()); err != nil {
		return err
	}
	res.EnvelopeBytes = float64(ef.envBytes) / float64(ef.count)
	if res.StoredEvents > 0 {
		res.DiskBytesPerEvent = float64(res.LedgerDiskBytes) / float64(res.StoredEvents)
		res.DiskToEnvelope = res.DiskBytesPerEvent / res.EnvelopeBytes
	}
	return nil
}
