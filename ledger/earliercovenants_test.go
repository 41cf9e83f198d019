package ledger_test

import (
	"errors"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// TestEarlierCovenants: an empty store given the demo's version 1 as an
// earlier version and the contacts version 2 as Covenant logs both, in
// order (what spoor serve does on first start); a store holding version 1
// only takes version 2 at the next start; a start with the same versions
// appends nothing; an earlier version that differs from the logged one is
// refused.
func TestEarlierCovenants(t *testing.T) {
	e := testledger.New(t)
	v1, v2 := e.Demo.Signed, e.Demo.Contacts
	if v2 == nil {
		t.Fatal("the demo has no contacts version")
	}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Covenant: v1})
	if got := l.Head().Size; got != 1 {
		t.Fatalf("version 1 alone: tree size %d, want 1", got)
	}
	l.Close()
	s.Close()

	cfg := ledger.Config{IdleCosign: -1, Covenant: v2, EarlierCovenants: []*events.SignedCovenant{v1}}
	l, s = e.Open(t, cfg)
	cov, idx := l.Covenant()
	if l.Head().Size != 2 || cov.Covenant.Version != 2 || idx != 1 {
		t.Fatalf("after version 2: size %d, version %d at leaf %d; want 2, 2 at 1", l.Head().Size, cov.Covenant.Version, idx)
	}
	l.Close()
	s.Close()

	l, s = e.Open(t, cfg)
	if l.Head().Size != 2 {
		t.Fatalf("the same versions again: size %d, want 2", l.Head().Size)
	}
	l.Close()
	s.Close()

	other := testledger.New(t)
	st, err := pebblestore.Open(datadir.Dir(e.Dir).Ledger(), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = ledger.Open(t.Context(), ledger.Config{Store: st, Signer: e.Signer, Keys: e.Keys, IdleCosign: -1,
		Covenant: v2, EarlierCovenants: []*events.SignedCovenant{other.Demo.Signed}})
	if !errors.Is(err, events.ErrCovenantChain) {
		t.Fatalf("an earlier version unlike the logged one: got %v, want ErrCovenantChain", err)
	}
}
