package pebblestore_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store {
		s, err := pebblestore.Open(t.TempDir(), pebblestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// reopener opens the store in dir, on fs (nil: the OS's).
type reopener struct {
	dir string
	fs  vfs.FS
}

func (r reopener) Open(t *testing.T) ledger.Store {
	s, err := pebblestore.Open(r.dir, pebblestore.Config{FS: r.fs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDurability(t *testing.T) {
	storetest.RunDurability(t, reopener{dir: t.TempDir()})
}

// TestInMemoryFS runs the suite on Pebble's in-memory file system; the fault
// tests (faults_test.go) run on its crashable one.
func TestInMemoryFS(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store {
		s, err := pebblestore.Open("", pebblestore.Config{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	storetest.RunDurability(t, reopener{dir: "db", fs: vfs.NewMem()})
}
