package main

import (
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/crashpoint"
)

// TestNoFalseAlarmAfterLedgerCrash kills `spoor serve` 20 times at the
// crash point witnessed-before-store: the quorum of the three witness
// processes has cosigned the published head (each persisted it before it
// answered) and the ledger has not stored their cosignatures. The
// witnesses then hold a checkpoint the ledger never recorded as witnessed,
// and the restarted ledger's witness client starts from old 0. After each
// restart:
//   - the ledger learns each witness's size (409 with the checkpoint's own
//     size, the answer it lost) and the witnesses cosign the same tree
//     again: the witnessed head reaches the head they held and beyond;
//   - no fork or rollback alarm: none in this run's log, none in the
//     metrics, /healthz not degraded.
//
// Each run is armed for the second time it reaches the point: the first
// is the round that re-sends the head at the start (after a kill, the one
// the witnesses hold), which must go through for the checks above; the
// second comes with the events the test publishes next.
func TestNoFalseAlarmAfterLedgerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills spoor serve 20 times beside three spoor witness processes")
	}
	const kills = 20
	began := time.Now()
	w := startWitnessedServe(t)
	if err := w.srv.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	var (
		prevWitnessed uint64 // the ledger's witnessed size when the load of the run began
		conflicts     int    // 409 answers the witnesses gave the restarted ledgers
		heldAtKill    uint64 // the largest size a witness held after the last kill
		ownSize       int    // restarts whose head was the very checkpoint the witnesses held
	)
	for i := range kills {
		point := crashpoint.WitnessedBeforeStore + ":2"
		before := map[string]map[string]int{}
		for _, n := range witnessNames {
			before[n] = witnessOutcomes(t, w.ws[n].url(), w.origin)
		}
		if err := w.srv.start(point); err != nil {
			t.Fatal(err)
		}
		if err := w.srv.waitReady(60 * time.Second); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		// The first round sends the head again (the witnessed head is
		// never the newest signed checkpoint at a start: after a kill here
		// it is older, and storing cosignatures signs a new checkpoint of
		// the same tree) and passes the point the first time.
		w.waitRounds(1)
		h := w.waitWitnessed()
		if i > 0 {
			// The witnesses held more than the ledger had stored; now the
			// ledger has it too, from their new cosignatures.
			if h.WitnessedTreeSize <= prevWitnessed {
				t.Fatalf("run %d: witnessed size %d after the restart, %d before the kill", i+1, h.WitnessedTreeSize, prevWitnessed)
			}
			_, by := w.checkpoint()
			if len(by) < 2 {
				t.Fatalf("run %d: the witnessed head is cosigned by %v", i+1, by)
			}
			for _, n := range witnessNames {
				after := witnessOutcomes(t, w.ws[n].url(), w.origin)
				conflicts += after["conflict"] - before[n]["conflict"]
			}
			if h.TreeSize == heldAtKill {
				ownSize++
			}
		}
		w.noAlarm("run "+itoa(uint64(i+1))+" after the restart", w.health())
		prevWitnessed = h.WitnessedTreeSize

		// Load: one event, so that one batch grows the tree and its round,
		// the point's second hit, is killed once the quorum cosigned it,
		// before the ledger stores the cosignatures. (With more, events
		// the bus took but the ledger had not committed at the kill would
		// grow the tree at the next start, and their round would hit the
		// point before the checks above.) The kill may come before the
		// bus's ack reaches the test; the event is then the bus's to keep.
		w.publishUntil(1, func() bool { _, err := w.srv.waitExit(5 * time.Second); return err == nil })
		st, err := w.srv.waitExit(crashpointTimeout)
		if err != nil {
			t.Fatalf("run %d: %s was not reached: %v", i+1, point, err)
		}
		if !killedBySIGKILL(st) {
			t.Fatalf("run %d: spoor serve exited with %s, not killed at %s", i+1, st, point)
		}
		// The quorum persisted a checkpoint beyond what the ledger stored.
		ahead := 0
		heldAtKill = 0
		for _, n := range witnessNames {
			held := w.openWitnessed(servedCheckpoint(t, w.ws[n].url(), w.origin), n).Size
			if held > prevWitnessed {
				ahead++
			}
			heldAtKill = max(heldAtKill, held)
		}
		if ahead < 2 {
			t.Fatalf("run %d: %d witnesses hold more than the ledger's witnessed size %d: the kill was not between their answer and the store", i+1, ahead, prevWitnessed)
		}
	}
	// A last clean run: the witnesses cosign again, no alarm.
	if err := w.srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := w.srv.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	h := w.waitWitnessed()
	if h.WitnessedTreeSize <= prevWitnessed {
		t.Fatalf("the last run: witnessed size %d, %d before the kill", h.WitnessedTreeSize, prevWitnessed)
	}
	w.noAlarm("the last run", w.publishAndWitness(5))
	if conflicts < kills-1 {
		t.Fatalf("%d 409 answers over %d restarts: the restarted ledgers did not have to learn the witnesses' sizes", conflicts, kills-1)
	}
	if ownSize == 0 {
		t.Fatal("no restart found its head to be the checkpoint the witnesses held: the 409 with the checkpoint's own size was not tested")
	}
	t.Logf("%d kills at %s; %d 409 answers taken calmly by the restarted ledgers, %d restarts with the head the witnesses held "+
		"(409 with the checkpoint's own size); final witnessed size %d; %s in all",
		kills, crashpoint.WitnessedBeforeStore, conflicts, ownSize, h.WitnessedTreeSize, time.Since(began).Round(time.Second))
}
