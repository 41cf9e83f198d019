package memstore_test

import (
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/memstore"
	"github.com/spoor-ledger/spoor/ledger/storetest"
)

// reopener reopens one disk: a restart.
type reopener struct{ disk *memstore.Disk }

func (r reopener) Open(*testing.T) ledger.Store { return memstore.Open(r.disk) }

// faulty makes a store whose disk fails with fault.
func faulty(fault memstore.Fault) storetest.FaultOpener {
	return func(*testing.T) storetest.Faulty {
		d := memstore.NewDisk()
		return storetest.Faulty{
			Store: memstore.Open(d),
			Fail:  func(err error) { d.Inject(fault, err) },
			Crash: func(*testing.T) ledger.Store {
				d.Inject(memstore.NoFault, nil)
				return memstore.Open(d)
			},
		}
	}
}

// TestConformance runs the whole suite on the reference store, with a disk
// that fails before a batch's ahead writes land and one that fails after.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) ledger.Store { return memstore.New() })
	storetest.RunDurability(t, reopener{memstore.NewDisk()})
	t.Run("FailAll", func(t *testing.T) { storetest.RunFaults(t, faulty(memstore.FailAll)) })
	t.Run("FailAfterAhead", func(t *testing.T) { storetest.RunFaults(t, faulty(memstore.FailAfterAhead)) })
}
