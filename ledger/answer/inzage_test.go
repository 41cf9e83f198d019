package answer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// eventAbout returns a signed synthetic disclosure about child.
func eventAbout(t testing.TB, e *testledger.Env, child synth.Child) ([]byte, *events.Disclosure) {
	t.Helper()
	d, _ := e.Gen.Next()
	d.Subject.Pseudonym = child.Pseudonym
	d.SubjectAgeBand = child.AgeBand
	return e.Sign(t, d), d
}

func inzageRequest(e *testledger.Env, child synth.Child) answer.BundleRequest {
	now := time.Now().UTC().Truncate(time.Second)
	return answer.BundleRequest{
		IDType:       events.IDTypeBSN,
		Pseudonyms:   []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: child.Pseudonym}},
		Request:      verifier.InzageRequest{ID: "inzage-7", Relation: verifier.RelationParent, RequestedAt: now.Add(-time.Hour), ReleasedAt: now},
		LogVkey:      e.LogVkey,
		CosignerVkey: e.CosVkey,
	}
}

func TestBuildBundle(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	desk := answer.New(answer.Config{Ledger: l})
	ctx := context.Background()
	children := e.Gen.Children()
	alice, nobody := children[0], children[1]

	// Alice's disclosures among other children's (who are never children[1]).
	var subs []ledger.Submission
	var aliceIDs []string
	for i := range 30 {
		if i%5 == 0 {
			env, d := eventAbout(t, e, alice)
			aliceIDs = append(aliceIDs, d.ID)
			subs = append(subs, e.Submission(t, l, env))
			continue
		}
		d, child := e.Gen.Next()
		if child.Pseudonym == alice.Pseudonym || child.Pseudonym == nobody.Pseudonym {
			d.Subject.Pseudonym = children[2].Pseudonym
		}
		subs = append(subs, e.Submission(t, l, e.Sign(t, d)))
	}
	out := submit(t, l, subs)
	var aliceLeaves []uint64
	disclosers := map[uint64]string{}
	for i, o := range out {
		if slices.Contains(aliceIDs, subs[i].Disclosure.ID) {
			aliceLeaves = append(aliceLeaves, o.Index)
			disclosers[o.Index] = subs[i].Disclosure.Discloser
		}
	}

	t.Run("all parties", func(t *testing.T) {
		data, vb, err := desk.BuildBundle(ctx, inzageRequest(e, alice))
		if err != nil {
			t.Fatalf("BuildBundle: %v", err)
		}
		// A parent checks it with the pinned keys alone.
		got, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey)
		if err != nil {
			t.Fatalf("VerifyBundle: %v", err)
		}
		var leaves []uint64
		for _, vd := range got.Disclosures {
			leaves = append(leaves, vd.Index)
		}
		if !slices.Equal(leaves, aliceLeaves) {
			t.Errorf("bundle has leaves %v, want %v", leaves, aliceLeaves)
		}
		if got.Checkpoint.Size != l.Head().Size || !got.Bundle.Scope.CentralDesk || len(got.Bundle.Scope.Parties) != len(e.Demo.Signed.Covenant.Parties) {
			t.Errorf("checkpoint size %d, scope %+v", got.Checkpoint.Size, got.Bundle.Scope)
		}
		if len(vb.Disclosures) != len(aliceLeaves) {
			t.Errorf("BuildBundle's own verified bundle has %d disclosures", len(vb.Disclosures))
		}
		var page bytes.Buffer
		if err := report.WriteInzage(&page, vb); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(page.Bytes(), []byte(alice.BSN)) || bytes.Contains(page.Bytes(), []byte(alice.Pseudonym[:16])) {
			t.Errorf("the report shows the BSN or the pseudonym")
		}
	})

	t.Run("one party, one withheld", func(t *testing.T) {
		party := disclosers[aliceLeaves[0]]
		var want []uint64
		for _, idx := range aliceLeaves {
			if disclosers[idx] == party {
				want = append(want, idx)
			}
		}
		req := inzageRequest(e, alice)
		req.Parties = []string{party}
		req.Withheld = map[uint64]string{want[0]: verifier.WithholdAVG23}
		data, _, err := desk.BuildBundle(ctx, req)
		if err != nil {
			t.Fatalf("BuildBundle: %v", err)
		}
		vb, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey)
		if err != nil {
			t.Fatalf("VerifyBundle: %v", err)
		}
		if len(vb.Withheld) != 1 || vb.Withheld[0].Index != want[0] || vb.Withheld[0].Ground != verifier.WithholdAVG23 {
			t.Errorf("withheld %+v", vb.Withheld)
		}
		if len(vb.Disclosures) != len(want)-1 || vb.Bundle.Scope.CentralDesk || !slices.Equal(vb.Bundle.Scope.Parties, []string{party}) {
			t.Errorf("%d disclosures (want %d), scope %+v", len(vb.Disclosures), len(want)-1, vb.Bundle.Scope)
		}
		for _, vd := range vb.Disclosures {
			if vd.Disclosure.Discloser != party {
				t.Errorf("leaf %d by %s is out of scope", vd.Index, vd.Disclosure.Discloser)
			}
		}
	})

	t.Run("no disclosures", func(t *testing.T) {
		data, vb, err := desk.BuildBundle(ctx, inzageRequest(e, nobody))
		if err != nil {
			t.Fatalf("BuildBundle: %v", err)
		}
		if _, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey); err != nil {
			t.Fatalf("VerifyBundle: %v", err)
		}
		if len(vb.Disclosures) != 0 || len(vb.Covenants) != 1 || vb.Checkpoint == nil {
			t.Errorf("%d disclosures, %d covenants", len(vb.Disclosures), len(vb.Covenants))
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for name, edit := range map[string]func(r *answer.BundleRequest){
			"no pseudonym":         func(r *answer.BundleRequest) { r.Pseudonyms = nil },
			"bad pseudonym":        func(r *answer.BundleRequest) { r.Pseudonyms[0].Pseudonym = "abc" },
			"unknown party":        func(r *answer.BundleRequest) { r.Parties = []string{"gemeente-utrecht"} },
			"unknown ground":       func(r *answer.BundleRequest) { r.Withheld = map[uint64]string{aliceLeaves[0]: "geheim"} },
			"withheld not alice's": func(r *answer.BundleRequest) { r.Withheld = map[uint64]string{0: verifier.WithholdUAVG41} },
			"bad relation":         func(r *answer.BundleRequest) { r.Request.Relation = "buurvrouw" },
		} {
			req := inzageRequest(e, alice)
			edit(&req)
			if _, _, err := desk.BuildBundle(ctx, req); !errors.Is(err, answer.ErrBundleRequest) {
				t.Errorf("%s: got %v, want ErrBundleRequest", name, err)
			}
		}
	})
}

// TestBuildBundleWhileLogging builds bundles while the sequencer commits:
// every bundle is against one checkpoint and verifies.
func TestBuildBundleWhileLogging(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, MaxBatch: 4})
	defer s.Close()
	defer l.Close()
	desk := answer.New(answer.Config{Ledger: l})
	ctx := context.Background()
	alice := e.Gen.Children()[0]
	var subs []ledger.Submission
	for range 40 {
		env, _ := eventAbout(t, e, alice)
		subs = append(subs, e.Submission(t, l, env))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, sub := range subs {
			p, err := l.Submit(ctx, []ledger.Submission{sub})
			if err == nil {
				_, err = p.Wait(ctx)
			}
			if err != nil {
				t.Errorf("submit: %v", err)
				return
			}
		}
	}()
	for range 10 {
		data, _, err := desk.BuildBundle(ctx, inzageRequest(e, alice))
		if err != nil {
			t.Fatalf("BuildBundle: %v", err)
		}
		if _, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey); err != nil {
			t.Fatalf("VerifyBundle: %v", err)
		}
	}
	wg.Wait()
	_, vb, err := desk.BuildBundle(ctx, inzageRequest(e, alice))
	if err != nil {
		t.Fatal(err)
	}
	if len(vb.Disclosures) != 40 {
		t.Errorf("final bundle has %d disclosures, want 40", len(vb.Disclosures))
	}
}

// TestBuiltBundleMatchesVerifyBundle checks that what BuildBundle returns as
// verified (its own checks, which skip recomputing the disclosers'
// signatures) is exactly what a parent's VerifyBundle makes of the bundle's
// bytes: entries, a withheld entry and an erased one.
func TestBuiltBundleMatchesVerifyBundle(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	desk := answer.New(answer.Config{Ledger: l})
	ctx := context.Background()
	alice := e.Gen.Children()[0]
	var subs []ledger.Submission
	for i := range 300 {
		if i%6 == 0 {
			env, _ := eventAbout(t, e, alice)
			subs = append(subs, e.Submission(t, l, env))
			continue
		}
		env, _ := e.Event(t)
		subs = append(subs, e.Submission(t, l, env))
	}
	out := submit(t, l, subs)
	var aliceLeaves []uint64
	for i, o := range out {
		if subs[i].Disclosure.Subject.Pseudonym == alice.Pseudonym {
			aliceLeaves = append(aliceLeaves, o.Index)
		}
	}
	if len(aliceLeaves) < 3 {
		t.Fatalf("only %d disclosures about the child", len(aliceLeaves))
	}
	if _, err := l.Erase(ctx, aliceLeaves[1], "avg-17-1-a"); err != nil {
		t.Fatal(err)
	}
	req := inzageRequest(e, alice)
	req.Withheld = map[uint64]string{aliceLeaves[2]: verifier.WithholdUAVG41}
	data, built, err := desk.BuildBundle(ctx, req)
	if err != nil {
		t.Fatalf("BuildBundle: %v", err)
	}
	parent, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	if len(built.Disclosures) != len(aliceLeaves)-2 || len(built.Withheld) != 1 || len(built.Erased) != 1 {
		t.Fatalf("built %d disclosures, %d withheld, %d erased", len(built.Disclosures), len(built.Withheld), len(built.Erased))
	}
	// The decoded bundle differs from the built one only in how JSON
	// round-trips it; its bytes are compared instead.
	again, err := verifier.MarshalBundle(built.Bundle)
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("the built bundle does not marshal to the bytes returned (err %v)", err)
	}
	b1, b2 := built.Bundle, parent.Bundle
	built.Bundle, parent.Bundle = nil, nil
	defer func() { built.Bundle, parent.Bundle = b1, b2 }()
	if !reflect.DeepEqual(built, parent) {
		t.Errorf("BuildBundle's verified bundle differs from VerifyBundle's:\n built  %+v\n parent %+v", built, parent)
	}
}

// TestBuildBundleRefusesTamperedStore checks that a stored envelope or a
// stored tile that no longer matches what the log committed to stops the
// bundle with ErrCorrupt instead of handing it out.
func TestBuildBundleRefusesTamperedStore(t *testing.T) {
	for _, what := range []string{"envelope", "tile"} {
		t.Run(what, func(t *testing.T) {
			e := testledger.New(t)
			l, s := e.Open(t, ledger.Config{IdleCosign: -1})
			defer s.Close()
			defer l.Close()
			desk := answer.New(answer.Config{Ledger: l})
			ctx := context.Background()
			alice := e.Gen.Children()[0]
			var subs []ledger.Submission
			for range 5 {
				env, _ := eventAbout(t, e, alice)
				subs = append(subs, e.Submission(t, l, env))
			}
			out := submit(t, l, subs)
			idx := out[2].Index
			var key []byte
			switch what {
			case "envelope":
				key = binary.BigEndian.AppendUint64([]byte{'e'}, idx)
			case "tile":
				// Level-0 tile 0 (partial, so never in the full-tile
				// cache): the hash of a leaf another proof needs.
				key = []byte{'t', 0}
				key = binary.BigEndian.AppendUint64(key, 0)
			}
			old, err := s.Get(ctx, key)
			if err != nil {
				t.Fatalf("reading %s: %v", what, err)
			}
			changed := bytes.Clone(old)
			// Inside the payload (the subject, say) or the signature:
			// either way the bytes are not the ones logged.
			for _, at := range []int{len(changed) / 2, len(changed) - 20} {
				changed[at] ^= 1
			}
			var b ledger.Batch
			b.Set(key, changed)
			if err := s.Commit(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if _, _, err := desk.BuildBundle(ctx, inzageRequest(e, alice)); !errors.Is(err, ledger.ErrCorrupt) {
				t.Fatalf("BuildBundle over a tampered %s: %v, want ErrCorrupt", what, err)
			}
			if what != "envelope" {
				return
			}
			// Only the signature changed: the envelope still parses and
			// names the child, and its body hash gives it away.
			changed = bytes.Clone(old)
			// A character in the middle of the signature's base64, changed
			// to another base64 character: the envelope stays canonical
			// (a flipped bit could land on the last character's padding
			// bits, and then the parse refuses it before any hash check).
			sig := bytes.Index(changed, []byte(`"sig":"`))
			if sig < 0 {
				t.Fatalf("the stored envelope has no signature field")
			}
			at := sig + len(`"sig":"`) + 10
			if changed[at] == 'A' {
				changed[at] = 'B'
			} else {
				changed[at] = 'A'
			}
			b = ledger.Batch{}
			b.Set(key, changed)
			if err := s.Commit(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if _, _, err := desk.BuildBundle(ctx, inzageRequest(e, alice)); !errors.Is(err, ledger.ErrCorrupt) || !errors.Is(err, verifier.ErrLeafMismatch) {
				t.Fatalf("BuildBundle over a re-signed envelope: %v, want ErrCorrupt and ErrLeafMismatch", err)
			}
		})
	}
}
