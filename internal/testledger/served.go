package testledger

import (
	"net/http/httptest"
	"testing"

	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// FGToken is the FG's bearer token on a Served ledger.
const FGToken = "fg-token"

// Served is a real ledger (Pebble on a temp dir) behind the HTTP API, for
// the clients that read a log over HTTP: the monitor, the audit, verify.
type Served struct {
	Env *Env
	L   *ledger.Ledger
	// Store is closed at the test's end unless a test closed it and set
	// it to nil.
	Store *pebblestore.Store
	Srv   *httptest.Server
}

// Serve opens e's ledger (cosigning only with new entries) and serves it
// with the FG's token FGToken; all is closed at the test's end.
func (e *Env) Serve(t testing.TB) *Served {
	t.Helper()
	return e.ServeWith(t, ledger.Config{IdleCosign: -1})
}

// ServeWith is Serve with cfg (the subject index on, say).
func (e *Env) ServeWith(t testing.TB, cfg ledger.Config) *Served {
	t.Helper()
	l, s := e.Open(t, cfg)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Tokens: map[[32]byte]httpapi.Principal{
		httpapi.TokenHash(FGToken): {Role: httpapi.RoleFG, Name: "fg"},
	}}))
	sl := &Served{Env: e, L: l, Store: s, Srv: srv}
	t.Cleanup(func() {
		srv.Close()
		l.Close()
		if sl.Store != nil {
			sl.Store.Close()
		}
	})
	return sl
}

// Grow logs events until the tree has size leaves.
func (sl *Served) Grow(t testing.TB, size uint64) {
	t.Helper()
	for sl.L.Head().Size < size {
		if _, err := sl.Env.SubmitEvents(t, sl.L, int(min(50, size-sl.L.Head().Size))); err != nil {
			t.Fatal(err)
		}
	}
}

// Twin returns a test log with the same covenant and log keys as e but its
// own store and other events: what a log operator who forks the log would
// serve.
func (e *Env) Twin(t testing.TB) *Env {
	t.Helper()
	twin := New(t)
	twin.Demo, twin.LogSkey, twin.LogVkey, twin.CosSkey, twin.CosVkey = e.Demo, e.LogSkey, e.LogVkey, e.CosSkey, e.CosVkey
	twin.Keys, twin.Signer = e.Keys, e.Signer
	gen, err := synth.New(e.Demo.Signed.Covenant, e.Demo.SubjectKey, 99, 50)
	if err != nil {
		t.Fatal(err)
	}
	twin.Gen = gen
	return twin
}
