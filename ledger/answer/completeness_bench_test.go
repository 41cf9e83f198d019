package answer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
)

// BenchmarkReleaseWithProofs times an inzage answer with the subject
// index on, as a central desk answers it: the release (the draft bundle,
// the answer entry and, in its batch, one index proof per party of the
// covenant) and the download (the v3 bundle built and checked with the
// verifier), and reports the size of the completeness proof in the
// bundle's JSON.
//
//	go test -run XXX -bench ReleaseWithProofs -benchtime 20x ./ledger/answer/
func BenchmarkReleaseWithProofs(b *testing.B) {
	b.Run("index", func(b *testing.B) { benchRelease(b, true) })
	b.Run("no-index", func(b *testing.B) { benchRelease(b, false) })
}

func benchRelease(b *testing.B, on bool) {
	x := newIndexedLogB(b, on)
	scope, err := x.a.DeskScope("")
	if err != nil {
		b.Fatal(err)
	}
	child := x.e.Gen.Children()[0]
	var release, download time.Duration
	var proofBytes int
	i := 0
	for b.Loop() {
		i++
		ar := &answer.AccessRequest{ID: fmt.Sprintf("bench-%d", i), IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
			Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: x.e.Demo.SubjectKey.ID, Pseudonym: child.Pseudonym}},
			RequestedBy: "desk-1", RequestedByCredential: "1"}
		if err := x.a.RegisterAccess(b.Context(), ar); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		r, err := x.a.ReleaseAccess(b.Context(), scope, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, answer.Release{})
		if err != nil {
			b.Fatal(err)
		}
		release += time.Since(start)
		start = time.Now()
		data, err := x.a.AccessBundle(b.Context(), r)
		if err != nil {
			b.Fatal(err)
		}
		download += time.Since(start)
		bb, err := verifier.ParseBundle(data)
		if err != nil || (bb.Index == nil) == on {
			b.Fatalf("index %t, a bundle of format %s (%v)", on, bb.Format, err)
		}
		withIndex, _ := verifier.MarshalBundle(bb)
		bb.Index = nil
		without, _ := verifier.MarshalBundle(bb)
		proofBytes = len(withIndex) - len(without)
	}
	b.ReportMetric(float64(release.Microseconds())/float64(i), "release-us/op")
	b.ReportMetric(float64(download.Microseconds())/float64(i), "download-us/op")
	b.ReportMetric(float64(proofBytes), "proof-bytes")
}
