package main

import (
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

// TestPrepareLineSchema: spoor publish writes wire format v2 for a line whose
// subject carries its VRF output, v1 otherwise, and refuses a line naming v1
// with an output (issue 23).
func TestPrepareLineSchema(t *testing.T) {
	key, err := events.GeneratePartyKey("gemeente-a")
	if err != nil {
		t.Fatal(err)
	}
	line := func(subjectExtra, schema string) []byte {
		s := `{` + schema + `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","processing_activity":"register/x",` +
			`"occurred_at":"2026-01-05T10:00:00Z","recipients":["school-a"],` +
			`"subject":{"id_type":"bsn","key_id":"kv-2026-1","pseudonym":"` + strings.Repeat("a", 64) + `"` + subjectExtra + `},` +
			`"subject_age_band":"12-15","categories":["identificatie"],"purpose":"verzuim","legal_basis":{"ground":"c"},` +
			`"justification":"Verzuim gemeld","channel":"system","actor":{"role":"lpa","staff_id":"lpa-1"}}`
		return []byte(s)
	}
	out := `,"vrf_output":"` + strings.Repeat("b", 128) + `"`
	d, err := prepareLine(line(out, ""), key, "spoor.example/test")
	if err != nil || d.Schema != events.SchemaV2 {
		t.Fatalf("line with vrf_output: schema %v, %v", d, err)
	}
	d, err = prepareLine(line("", ""), key, "spoor.example/test")
	if err != nil || d.Schema != events.SchemaV1 {
		t.Fatalf("line without: %v, %v", d, err)
	}
	if _, err := prepareLine(line(out, `"schema":"spoor.disclosure/v1",`), key, "spoor.example/test"); err == nil || !strings.Contains(err.Error(), "subject.vrf_output") {
		t.Fatalf("v1 line with vrf_output: err = %v", err)
	}
}
