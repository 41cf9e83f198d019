package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/dashboard/index"
	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
)

// TestVolumeVerdicts: a series of 20 days can be judged ("geen" when the
// audit found nothing), one of 3 days cannot, an erased disclosure leaves
// the counts, and an organisation's month totals follow adds and erasures.
func TestVolumeVerdicts(t *testing.T) {
	tb := newTables()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := func(party string, day int) *events.Disclosure {
		return &events.Disclosure{Discloser: party, Purpose: "p", Categories: []string{"c1", "c2"},
			LegalBasis: events.LegalBasis{Ground: "c"}, OccurredAt: start.AddDate(0, 0, day)}
	}
	for day := range 21 {
		tb.add(d("lang", day), 1)
	}
	for day := range 3 {
		tb.add(d("kort", day), 1)
	}
	got := map[string]volumeVerdict{}
	for _, v := range tb.verdicts(map[string]int{}) {
		got[v.Party] = v
	}
	if v := got["lang"]; !v.Assessable || v.HistoryDays != 20 {
		t.Errorf("20 days of history: %+v, want assessable", v)
	}
	if v := got["kort"]; v.Assessable || v.HistoryDays != 2 {
		t.Errorf("2 days of history: %+v, want not assessable", v)
	}
	tb.add(d("kort", 2), -1)
	tb.add(d("kort", 1), -1)
	for _, v := range tb.verdicts(nil) {
		if v.Party == "kort" && v.HistoryDays != 0 {
			t.Errorf("after two erasures: %+v", v)
		}
	}
	for _, table := range tb.build() {
		if table.ID != "categorie" {
			continue
		}
		total := 0
		for _, r := range table.Rows {
			total += r.Total
		}
		if total != 2*22 || !strings.HasPrefix(table.Months[0], "2026-03") {
			t.Errorf("the categories' table counts %d over %v, want 44", total, table.Months)
		}
	}
}

// TestEraseDuringFirstCount: an erasure the follower applies while the
// tables are first counted is taken out of the counts only if the count
// already passed the leaf; ahead of it, the leaf is skipped when reached.
func TestEraseDuringFirstCount(t *testing.T) {
	env := testledger.New(t)
	body, d := env.Event(t)
	tb := newTables()
	tb.add(d, 1) // counted: leaf 1, behind the count
	tb.startBuild(10)
	tb.mu.Lock()
	tb.builtTo = 3
	tb.mu.Unlock()
	tb.erase(index.Erased{Leaf: 1, Body: body})
	tb.erase(index.Erased{Leaf: 5, Body: body})
	if !tb.erasedEarly[5] || tb.erasedEarly[1] {
		t.Fatalf("erased ahead of the count: %v", tb.erasedEarly)
	}
	for _, table := range tb.build() {
		for _, r := range table.Rows {
			if r.Total != 0 {
				t.Errorf("%s %s counts %d after the erasure", table.ID, r.ID, r.Total)
			}
		}
	}
}
