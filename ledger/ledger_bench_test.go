package ledger_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// benchPool returns n opened submissions of real signed synthetic events.
func benchPool(b *testing.B, e *testledger.Env, l *ledger.Ledger, n int) []ledger.Submission {
	b.Helper()
	pool := make([]ledger.Submission, n)
	for i := range pool {
		env, _ := e.Event(b)
		pool[i] = e.Submission(b, l, env)
	}
	return pool
}

// freshBatch returns count submissions from pool, each with a new event id
// derived from seq, so that every one becomes a new leaf.
func freshBatch(b *testing.B, pool []ledger.Submission, seq uint64, count int) []ledger.Submission {
	b.Helper()
	out := make([]ledger.Submission, count)
	for j := range out {
		src := pool[(int(seq)+j)%len(pool)]
		d := *src.Disclosure
		u, err := uuid.Parse(d.ID)
		if err != nil {
			b.Fatal(err)
		}
		binary.BigEndian.PutUint64(u[8:], seq+uint64(j))
		u[8] = 0x80 | u[8]&0x3f
		d.ID = u.String()
		out[j] = ledger.Submission{Envelope: src.Envelope, Disclosure: &d, Findings: src.Findings}
	}
	return out
}

// fill appends n entries in batches of 1024 and waits for each commit.
func fill(b *testing.B, l *ledger.Ledger, pool []ledger.Submission, seq *uint64, n int) {
	b.Helper()
	ctx := context.Background()
	for n > 0 {
		k := min(n, 1024)
		p, err := l.Submit(ctx, freshBatch(b, pool, *seq, k))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		*seq += uint64(k)
		n -= k
	}
}

// BenchmarkBatchCommit is the sequencer's work for one batch of 1024
// opened events: duplicate checks, leaf records, indices, tiles, the signed
// checkpoint and the Sync commit to Pebble.
func BenchmarkBatchCommit(b *testing.B) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	pool := benchPool(b, e, l, 512)
	var seq uint64
	const size = 1024
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := l.Submit(ctx, freshBatch(b, pool, seq, size))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		seq += size
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkInclusionProof builds inclusion proofs of random leaves of a
// log of 65536 entries, from the stored tiles.
func BenchmarkInclusionProof(b *testing.B) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	pool := benchPool(b, e, l, 256)
	var seq uint64
	fill(b, l, pool, &seq, 65536)
	size := l.Head().Size
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.InclusionProof(ctx, rng.Uint64N(size), size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsistencyProof proves a random older size against the head.
func BenchmarkConsistencyProof(b *testing.B) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	pool := benchPool(b, e, l, 256)
	var seq uint64
	fill(b, l, pool, &seq, 65536)
	size := l.Head().Size
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.ConsistencyProof(ctx, 1+rng.Uint64N(size-1), size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildBundle answers an inzage request about a child with about
// 50 disclosures among 10000 logged events: the subject index, envelopes,
// leaf records, inclusion proofs, and the bundle's own verification.
func BenchmarkBuildBundle(b *testing.B) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	// testledger's generator has 200 children: 10000 events give ~50 each.
	ctx := context.Background()
	for range 10 {
		subs := benchPool(b, e, l, 1000)
		p, err := l.Submit(ctx, subs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	children := e.Gen.Children()
	now := time.Now().UTC().Truncate(time.Millisecond)
	reqs := make([]answer.BundleRequest, len(children))
	for i, c := range children {
		reqs[i] = answer.BundleRequest{
			IDType:       events.IDTypeBSN,
			Pseudonyms:   []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: c.Pseudonym}},
			Request:      verifier.InzageRequest{ID: fmt.Sprintf("bench-%d", i), Relation: verifier.RelationParent, RequestedAt: now.Add(-time.Hour), ReleasedAt: now},
			LogVkey:      e.LogVkey,
			CosignerVkey: e.CosVkey,
		}
	}
	desk := answer.New(answer.Config{Ledger: l})
	total := 0
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		_, vb, err := desk.BuildBundle(ctx, reqs[i%len(reqs)])
		if err != nil {
			b.Fatal(err)
		}
		total += len(vb.Disclosures)
		i++
	}
	b.ReportMetric(float64(total)/float64(b.N), "disclosures/bundle")
}

// BenchmarkBySubject is the data-subject index lookup alone.
func BenchmarkBySubject(b *testing.B) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	pool := benchPool(b, e, l, 2000)
	ctx := context.Background()
	p, err := l.Submit(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	children := e.Gen.Children()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := l.BySubject(ctx, children[i%len(children)].Pseudonym); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAudit is the FG's audit (audit.Run) over the store of a
// ledger of 20000 signed events: every leaf hashed into the tree, every
// envelope opened with its signature, the rules and the statistics. Each
// sub-benchmark reports events/s; "workers=1" is the audit on one
// goroutine, "workers=all" on every core.
func BenchmarkAudit(b *testing.B) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	ctx := context.Background()
	for range 20 {
		// Every event signed afresh: the audit counts a repeated
		// envelope as a problem.
		p, err := l.Submit(ctx, benchPool(b, e, l, 1000))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for _, workers := range []int{1, 0} {
		name := "workers=all"
		if workers == 1 {
			name = "workers=1"
		}
		b.Run(name, func(b *testing.B) {
			var leaves uint64
			b.ReportAllocs()
			for b.Loop() {
				rep, err := audit.Run(ctx, l.AuditSource(), audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey, Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK {
					b.Fatalf("the audit found %d problems, the first: %s", len(rep.Problems), rep.Problems[0])
				}
				leaves += rep.TreeSize
			}
			b.ReportMetric(float64(leaves)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkMerkleRecompute recomputes the root of a log of 65536 entries
// from its served entry bundles, as an auditor without signatures does
// (and as spoor bench measures it): entry bundles, leaf hashes, compact
// range. "rfc6962" hashes interior nodes as spoor bench does today,
// "HashChildren" with verifier.HashChildren.
func BenchmarkMerkleRecompute(b *testing.B) {
	for _, hc := range []struct {
		name string
		fn   compact.HashFn
	}{{"rfc6962", rfc6962.DefaultHasher.HashChildren}, {"HashChildren", verifier.HashChildren}} {
		b.Run(hc.name, func(b *testing.B) { benchMerkleRecompute(b, hc.fn) })
	}
}

func benchMerkleRecompute(b *testing.B, hashChildren compact.HashFn) {
	e := testledger.New(b)
	l, s := e.Open(b, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	pool := benchPool(b, e, l, 256)
	var seq uint64
	fill(b, l, pool, &seq, 65536)
	head := l.Head()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rng := (&compact.RangeFactory{Hash: hashChildren}).NewEmptyRange(0)
		for n := uint64(0); n*verifier.TileWidth < head.Size; n++ {
			w := min(verifier.TileWidth, head.Size-n*verifier.TileWidth)
			bundle, err := l.EntryBundle(ctx, n, int(w))
			if err != nil {
				b.Fatal(err)
			}
			entries, err := verifier.ParseEntryBundle(bundle)
			if err != nil {
				b.Fatal(err)
			}
			for _, rec := range entries {
				h := verifier.LeafHash(rec)
				if err := rng.Append(h[:], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		root, err := rng.GetRootHash(nil)
		if err != nil || [32]byte(root) != head.Root {
			b.Fatalf("root %x, err %v", root, err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(head.Size)/b.Elapsed().Seconds(), "leaves/s")
}
