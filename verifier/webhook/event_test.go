package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const testID = "01936b2e-7c4d-7abc-8def-0123456789ab"

func TestEventRoundTrip(t *testing.T) {
	data := &RejectedData{Party: "gemeente-amersfoort", Counts: map[string]int{"bad_signature": 1, "malformed": 1},
		Events: []RejectedEvent{{EventID: testID, Reason: "bad_signature", StreamSeq: 7}, {Reason: "malformed", StreamSeq: 8}}}
	b, err := NewEvent(testID, "urn:nld:spoor:spoor.example/regio", TypeRejected, time.Unix(1700000000, 0), data)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "data"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("attribute %s missing in %s", k, b)
		}
	}
	if raw["specversion"] != "1.0" {
		t.Errorf("specversion %v", raw["specversion"])
	}
	ev, err := ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	got := ev.Data.(*RejectedData)
	if got.Party != data.Party || len(got.Events) != 2 || got.Counts["malformed"] != 1 {
		t.Errorf("parsed %+v", got)
	}
}

// TestCheckDataRefusesPersonalData: a pseudonym, a BSN or free text cannot
// pass as a body's id or code.
func TestCheckDataRefusesPersonalData(t *testing.T) {
	pseudonym := strings.Repeat("ab", 32)
	bad := []struct {
		typ  string
		data any
	}{
		{TypeRejected, &RejectedData{Party: "p", Counts: map[string]int{"malformed": 1}, Events: []RejectedEvent{{EventID: pseudonym, Reason: "malformed"}}}},
		{TypeRejected, &RejectedData{Party: "123456782", Counts: map[string]int{"malformed": 1}, Events: []RejectedEvent{{Reason: "malformed"}}}},
		{TypeRejected, &RejectedData{Party: "p", Counts: map[string]int{"the child of": 1}, Events: []RejectedEvent{{Reason: "the child of"}}}},
		{TypeRejected, &RejectedData{Party: "p", Counts: map[string]int{"malformed": 2}, Events: []RejectedEvent{{Reason: "malformed"}}}},
		{TypeFindings, &FindingsData{Party: "p", Counts: map[string]int{"r": 1}, Events: []FindingEvent{{EventID: testID, Rules: []RuleHit{{Rule: "r", Field: "Jan Jansen"}}}}}},
		{TypeAlarm, &AlarmData{Kind: "fork", Origin: "o", Witness: "123456782"}},
		{TypeAlarm, &AlarmData{Kind: "other", Origin: "o"}},
		{TypeFindings, &AlarmData{Kind: "fork", Origin: "o"}},
	}
	for i, c := range bad {
		if err := CheckData(c.typ, c.data); err == nil {
			t.Errorf("case %d accepted: %+v", i, c.data)
		}
	}
}
