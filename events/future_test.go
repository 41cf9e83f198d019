package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCheckRecordingCenturiesAhead: an occurred_at centuries after the time
// of recording is beyond what a time.Duration holds; the finding's message
// must still say how far ahead, not a negative, overflowed duration.
func TestCheckRecordingCenturiesAhead(t *testing.T) {
	c := mustParse(t, readTestdata(t, "valid.yaml"))
	d := testDisclosure(t)
	recorded := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		occurred time.Time
		want     string
	}{
		{recorded.Add(2 * time.Hour), "occurred_at is 2h0m0s after the ledger recorded the event"},
		{recorded.Add(1500 * time.Millisecond), ""},
		{time.Date(2300, 3, 1, 12, 0, 0, 0, time.UTC), "occurred_at is 2401824h0m0s after the ledger recorded the event"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "occurred_at is 2912383 days after the ledger recorded the event"},
	} {
		d.OccurredAt = tc.occurred
		fs := c.CheckRecording(d, recorded)
		if tc.want == "" {
			if len(fs) != 0 {
				t.Errorf("occurred %s: unexpected %+v", tc.occurred, fs)
			}
			continue
		}
		if len(fs) != 1 || fs[0].Rule != RuleOccurredAfterRecording || fs[0].Message != tc.want {
			t.Errorf("occurred %s: got %+v, want one %s: %q", tc.occurred, fs, RuleOccurredAfterRecording, tc.want)
		}
	}
}

// TestCheckOccurredInFuture: an occurred_at beyond the skew after the time
// of recording is refused as occurred_in_future; up to the skew it passes.
func TestCheckOccurredInFuture(t *testing.T) {
	d := testDisclosure(t)
	recorded := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ahead  time.Duration
		skew   time.Duration
		refuse string
	}{
		{-time.Hour, 0, ""},
		{0, 0, ""},
		{DefaultFutureSkew, 0, ""},
		{DefaultFutureSkew + time.Millisecond, 0, "occurred_in_future: occurred_at lies 5m0s after the ledger's time of recording; at most 5m0s is allowed"},
		{time.Hour, 0, "occurred_in_future: occurred_at lies 1h0m0s after"},
		{time.Hour, 2 * time.Hour, ""},
		{3 * time.Hour, 2 * time.Hour, "at most 2h0m0s is allowed"},
	} {
		d.OccurredAt = recorded.Add(tc.ahead)
		err := CheckOccurredInFuture(d, recorded, tc.skew)
		if tc.refuse == "" {
			if err != nil {
				t.Errorf("%s ahead, skew %s: %v", tc.ahead, tc.skew, err)
			}
			continue
		}
		var re *RejectError
		if !errors.As(err, &re) || re.Reason != ReasonOccurredInFuture || !strings.Contains(err.Error(), tc.refuse) {
			t.Errorf("%s ahead, skew %s: got %v, want %s (%q)", tc.ahead, tc.skew, err, ReasonOccurredInFuture, tc.refuse)
		}
	}
	d.OccurredAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	if err := CheckOccurredInFuture(d, recorded, 0); err == nil || !strings.Contains(err.Error(), "2912383 days") {
		t.Errorf("year 9999: %v", err)
	}
}
