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

// TestKeyedEventID pins the derivation from an idempotency key: a second
// gateway (or this one after a restart) must derive the same id, so the
// value is fixed here; another key, party or salt secret gives another id.
func TestKeyedEventID(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	id := events.KeyedEventID(secret, "gemeente-a", "order-42")
	if want := "5be2a795-985f-7eb0-b3ad-8167281ce3a5"; id != want { // also computed with Python's hmac module
		t.Errorf("KeyedEventID = %s, want %s", id, want)
	}
	if !events.ValidEventID(id) {
		t.Errorf("%s is not a valid event id", id)
	}
	for _, other := range []string{
		events.KeyedEventID(secret, "gemeente-a", "order-43"),
		events.KeyedEventID(secret, "school-b", "order-42"),
		events.KeyedEventID([]byte("another secret of 32 bytes......"), "gemeente-a", "order-42"),
		// The separator keeps party and key apart.
		events.KeyedEventID(secret, "gemeente-a\x00order", "-42"),
	} {
		if other == id {
			t.Errorf("another key, party or secret gave the same id %s", id)
		}
		if !events.ValidEventID(other) {
			t.Errorf("%s is not a valid event id", other)
		}
	}
}
