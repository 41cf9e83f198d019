package events_test

import (
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// TestDerivedEventID pins the derivation (spoor publish made this id from
// this line before the function moved to events): the same line gives the
// same valid UUIDv7, another party or line another one.
func TestDerivedEventID(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	line := []byte(`{"purpose":"x"}`)
	id := events.DerivedEventID("gemeente-a", line, at)
	if want := "01a20ce4-05c0-7b6a-a382-f2faed5ed592"; id != want {
		t.Errorf("DerivedEventID = %s, want %s", id, want)
	}
	if !events.ValidEventID(id) {
		t.Errorf("%s is not a valid event id", id)
	}
	if events.DerivedEventID("school-b", line, at) == id || events.DerivedEventID("gemeente-a", []byte(`{"purpose":"y"}`), at) == id {
		t.Error("another party or line gave the same id")
	}
}
