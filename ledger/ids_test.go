package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// otherParty returns a demo party that is neither d's discloser nor one of
// its recipients, so that d can be re-signed as that party's event.
func otherParty(t *testing.T, e *testledger.Env, d *events.Disclosure) string {
	t.Helper()
	var ids []string
	for id := range e.Demo.Parties {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if id != d.Discloser && !slices.Contains(d.Recipients, id) {
			return id
		}
	}
	t.Fatal("no other party")
	return ""
}

// sameIDAs re-signs a copy of d as party's event, under the same id.
func sameIDAs(t *testing.T, e *testledger.Env, d *events.Disclosure, party string) ([]byte, *events.Disclosure) {
	t.Helper()
	d2 := *d
	d2.Discloser, d2.Salt = party, ""
	return e.Sign(t, &d2), &d2
}

// TestEventIDsArePerDiscloser: an id another party already logged is no
// obstacle (before the fix it was refused as id_conflict, so one party could
// squat another's ids); the same party's id with other bytes is still a
// conflict, recorded with the hash of those bytes.
func TestEventIDsArePerDiscloser(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	ctx := context.Background()

	envA, dA := e.Event(t)
	outA := submit(t, l, []ledger.Submission{e.Submission(t, l, envA)})
	if outA[0].Err != nil {
		t.Fatal(outA[0].Err)
	}
	partyB := otherParty(t, e, dA)
	envB, _ := sameIDAs(t, e, dA, partyB)
	outB := submit(t, l, []ledger.Submission{e.Submission(t, l, envB)})
	if outB[0].Err != nil || outB[0].Duplicate || outB[0].Index == outA[0].Index {
		t.Fatalf("another party's event under a logged id: %+v, want a new leaf", outB[0])
	}
	for _, c := range []struct {
		party string
		idx   uint64
		env   []byte
	}{{dA.Discloser, outA[0].Index, envA}, {partyB, outB[0].Index, envB}} {
		got, err := l.FindEvent(ctx, c.party, dA.ID)
		if err != nil || got.Index != c.idx || got.Hash != sha256.Sum256(c.env) || got.Reserved {
			t.Fatalf("FindEvent(%s) = %+v, %v; want leaf %d", c.party, got, err, c.idx)
		}
	}
	for id := range e.Demo.Parties {
		if id == dA.Discloser || id == partyB {
			continue
		}
		if _, err := l.FindEvent(ctx, id, dA.ID); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("party %s finds the others' id: %v", id, err)
		}
	}
	all, err := l.EventsWithID(ctx, dA.ID)
	if err != nil || len(all) != 2 {
		t.Fatalf("EventsWithID = %+v, %v; want both events", all, err)
	}

	// The same party, the same id, other bytes: refused, and recorded
	// with the hash of the refused bytes.
	d3 := *dA
	d3.Justification += " (gewijzigd)"
	env3 := e.Sign(t, &d3)
	out3 := submit(t, l, []ledger.Submission{e.Submission(t, l, env3)})
	var re *events.RejectError
	if !errors.As(out3[0].Err, &re) || re.Reason != events.ReasonIDConflict || out3[0].Index != outA[0].Index {
		t.Fatalf("same party, same id, other bytes: %+v", out3[0])
	}
	rej, err := l.Rejected(ctx, dA.Discloser, dA.ID)
	h3 := sha256.Sum256(env3)
	if err != nil || rej.Reason != events.ReasonIDConflict || rej.SHA256 != hex.EncodeToString(h3[:]) {
		t.Fatalf("conflict record = %+v, %v", rej, err)
	}
	if _, err := l.Rejected(ctx, partyB, dA.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the conflict of one party shows as another's: %v", err)
	}
}

// TestOpenMigratesEventIDIndex writes a store in the layout of before ids
// were per discloser ('i' id -> index; 'r' id -> rejection with a message),
// with one event whose envelope was erased, and opens it: every id is found
// under its discloser, the erased one stays taken for every party, the old
// rejection moved under its party without its message, and a second Open
// finds nothing left to migrate.
func TestOpenMigratesEventIDIndex(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	ctx := context.Background()
	var envs [][]byte
	var ds []*events.Disclosure
	for range 5 {
		env, d := e.Event(t)
		envs, ds = append(envs, env), append(ds, d)
	}
	out, err := e.SubmitEnvelopes(t, l, envs)
	if err != nil {
		t.Fatal(err)
	}
	rejectedID := "019a0000-0000-7000-8000-000000000042"
	submit(t, l, []ledger.Submission{{Reject: &ledger.Rejection{EventID: rejectedID, Party: "gemeente-amersfoort",
		Reason: events.ReasonInvalid, Message: "quoted 999990019", At: time.Now().UTC()}}})
	l.Close()

	// Back to the old layout.
	var b ledger.Batch
	err = s.Scan(ctx, []byte{'d'}, []byte{'e'}, func(k, v []byte) error {
		b.Delete(bytes.Clone(k))
		b.Set(append([]byte{'i'}, k[1:17]...), bytes.Clone(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Scan(ctx, []byte{'r'}, []byte{'s'}, func(k, v []byte) error {
		b.Delete(bytes.Clone(k))
		b.Set(bytes.Clone(k[:17]), bytes.Clone(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Delete([]byte("mrejections-per-party"))
	// The envelope of event 2 erased.
	erased := out[2].Index
	b.Delete(binary.BigEndian.AppendUint64([]byte{'e'}, erased))
	if err := s.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	s.Close()

	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	defer func() { l.Close(); s.Close() }()
	for i, d := range ds {
		got, err := l.FindEvent(ctx, d.Discloser, d.ID)
		if err != nil || got.Index != out[i].Index || got.Hash != sha256.Sum256(envs[i]) {
			t.Fatalf("event %d after the migration: %+v, %v", i, got, err)
		}
		if got.Reserved != (got.Index == erased) {
			t.Fatalf("event %d reserved = %v", i, got.Reserved)
		}
	}
	n := 0
	if err := s.Scan(ctx, []byte{'i'}, []byte{'j'}, func(_, _ []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("%d old index entries left, %v", n, err)
	}
	rej, err := l.Rejected(ctx, "gemeente-amersfoort", rejectedID)
	if err != nil || rej.Reason != events.ReasonInvalid || rej.Message != "" {
		t.Fatalf("migrated rejection = %+v, %v; want its reason without its message", rej, err)
	}

	// The erased event's id is taken for every party; a live event's id
	// is free for the others.
	party := otherParty(t, e, ds[2])
	envX, _ := sameIDAs(t, e, ds[2], party)
	envY, _ := sameIDAs(t, e, ds[3], otherParty(t, e, ds[3]))
	o := submit(t, l, []ledger.Submission{e.Submission(t, l, envX), e.Submission(t, l, envY), e.Submission(t, l, envs[2])})
	var re *events.RejectError
	if !errors.As(o[0].Err, &re) || re.Reason != events.ReasonIDConflict || o[0].Index != erased {
		t.Fatalf("another party's event under an id erased before the migration: %+v, want id_conflict", o[0])
	}
	if o[1].Err != nil || o[1].Duplicate {
		t.Fatalf("another party's event under a live migrated id: %+v, want logged", o[1])
	}
	if !o[2].Duplicate || o[2].Index != erased {
		t.Fatalf("the erased bytes again: %+v, want a duplicate of leaf %d", o[2], erased)
	}

	// Reopened, nothing is migrated again and the reservation holds (the
	// id filter is rebuilt from both tables).
	l.Close()
	s.Close()
	ps, err := pebblestore.Open(e.Dir+"/ledger", pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s = ps
	l, err = ledger.Open(ctx, ledger.Config{Store: s, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1})
	if err != nil {
		t.Fatal(err)
	}
	o = submit(t, l, []ledger.Submission{e.Submission(t, l, envX)})
	if !errors.As(o[0].Err, &re) || re.Reason != events.ReasonIDConflict {
		t.Fatalf("after a reopen: %+v, want id_conflict", o[0])
	}
}
