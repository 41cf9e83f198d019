// Package testledger builds real ledgers for tests: the material of
// internal/testenv (the demo covenant with fresh keys, real log and
// cosigner keys, signed synthetic events) with a ledger on Pebble in the
// same temp dir. Nothing is mocked.
package testledger

import (
	"context"
	"testing"

	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/testenv"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/memstore"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/storetest"
)

// Env is the material of one test log (testenv.Env) and the Pebble store
// Open puts in its folder.
type Env struct {
	*testenv.Env
}

// New makes the keys and covenant of a test log in a temp dir.
func New(t testing.TB) *Env { t.Helper(); return &Env{testenv.New(t)} }

// Load makes the keys and covenant of a test log in dir, or loads those
// that an earlier New or Load made there, on the demo covenant of regio
// Amersfoort.
func Load(t testing.TB, dir string) *Env { t.Helper(); return &Env{testenv.Load(t, dir)} }

// NewDemo is New on the named demo covenant ("amersfoort", "waterweg").
func NewDemo(t testing.TB, name string) *Env { t.Helper(); return &Env{testenv.NewDemo(t, name)} }

// LoadDemo is Load on the named demo covenant.
func LoadDemo(t testing.TB, dir, name string) *Env {
	t.Helper()
	return &Env{testenv.LoadDemo(t, dir, name)}
}

// Open opens a ledger on Pebble in Dir/ledger (the same data on every
// call), with cfg's zero fields filled in.
func (e *Env) Open(t testing.TB, cfg ledger.Config) (*ledger.Ledger, *pebblestore.Store) {
	t.Helper()
	s, err := pebblestore.Open(datadir.Dir(e.Dir).Ledger(), pebblestore.Config{})
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	cfg.Store = s
	cfg.Signer = e.Signer
	cfg.Keys = e.Keys
	if cfg.Covenant == nil {
		cfg.Covenant = e.Demo.Signed
	}
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		s.Close()
		t.Fatalf("ledger.Open: %v", err)
	}
	return l, s
}

// PebbleStores is a storetest.Stores on Pebble: each call a fresh temp
// dir, opened, closed and reopened on the same files.
func PebbleStores(t *testing.T) storetest.Reopener { return pebbleData{dir: t.TempDir()} }

type pebbleData struct{ dir string }

func (p pebbleData) Open(t *testing.T) ledger.Store {
	t.Helper()
	s, err := pebblestore.Open(p.dir, pebblestore.Config{})
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	return s
}

// MemStores is a storetest.Stores on the reference store: each call a
// fresh in-memory disk, which keeps what was committed across a close and
// reopen.
func MemStores(*testing.T) storetest.Reopener { return memData{memstore.NewDisk()} }

type memData struct{ disk *memstore.Disk }

func (m memData) Open(*testing.T) ledger.Store { return memstore.Open(m.disk) }
