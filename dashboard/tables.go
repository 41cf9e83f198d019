package dashboard

// This file keeps the monthly tables per organisation, purpose, category
// and legal basis. They are counted from the copy's verified entries as
// the follower commits them (a disclosure's body is the one its leaf
// commits to, so the counts are the log's; signatures are the audit's to
// check, and a disclosure the audit refuses is a problem on every page),
// and a disclosure's counts are taken out again when a tombstone erases
// it: the tables are always those of what the copy holds.

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/dashboard/index"
	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// The tables' dimensions, in the order shown; their ids are the CSV
// routes' names.
var dimensions = []struct{ ID, Title, Column string }{
	{"organisatie", "Verstrekkingen per organisatie", "Organisatie"},
	{"doel", "Verstrekkingen per doel", "Doel"},
	{"categorie", "Verstrekkingen per gegevenscategorie", "Categorie"},
	{"grondslag", "Verstrekkingen per grondslag (AVG art. 6 lid 1)", "Grondslag"},
}

var amsterdam = func() *time.Location {
	l, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		return time.UTC
	}
	return l
}()

// tables counts disclosures per dimension, value and month ("2026-03",
// Amsterdam time of occurred_at).
type tables struct {
	mu     sync.Mutex
	counts map[string]map[string]map[string]int
	// days counts each organisation's disclosures per calendar day of
	// occurred_at (Amsterdam), as the audit's volume statistic does: the
	// anomalies page says from it whether a series can be judged at all.
	days map[string]map[int64]int
	// cov is the newest covenant version seen (at leaf covLeaf): its
	// labels name the ids.
	cov     *events.Covenant
	covLeaf uint64
	ready   bool
	// While the tables are first counted from the copy ([0, buildEnd),
	// beside the follower), builtTo is how far the count is, and
	// erasedEarly the leaves erased ahead of it: the count may have read
	// their bodies just before they were erased, so it skips them.
	building          bool
	builtTo, buildEnd uint64
	erasedEarly       map[uint64]bool
}

func newTables() *tables {
	t := &tables{counts: map[string]map[string]map[string]int{}, days: map[string]map[int64]int{}}
	for _, d := range dimensions {
		t.counts[d.ID] = map[string]map[string]int{}
	}
	return t
}

// disclosureOf decodes a stored disclosure's body; nil for anything else.
func disclosureOf(body []byte) *events.Disclosure {
	env, err := events.ParseEnvelope(body)
	if err != nil {
		return nil
	}
	d, err := events.DecodeDisclosure(env.Payload)
	if err != nil {
		return nil
	}
	return d
}

// add counts d with sign +1 or -1; the caller holds mu.
func (t *tables) add(d *events.Disclosure, sign int) {
	m := d.OccurredAt.In(amsterdam).Format("2006-01")
	bump := func(dim, v string) {
		row := t.counts[dim][v]
		if row == nil {
			row = map[string]int{}
			t.counts[dim][v] = row
		}
		row[m] += sign
	}
	bump("organisatie", d.Discloser)
	bump("doel", d.Purpose)
	for _, c := range d.Categories {
		bump("categorie", c)
	}
	bump("grondslag", d.LegalBasis.Ground)
	y, mo, dd := d.OccurredAt.In(amsterdam).Date()
	day := time.Date(y, mo, dd, 0, 0, 0, 0, time.UTC).Unix() / 86400
	if t.days[d.Discloser] == nil {
		t.days[d.Discloser] = map[int64]int{}
	}
	t.days[d.Discloser][day] += sign
	if t.days[d.Discloser][day] == 0 {
		delete(t.days[d.Discloser], day)
	}
}

// volumeVerdict is the anomalies page's verdict on one organisation's
// daily volume.
type volumeVerdict struct {
	Party, Name string
	// HistoryDays is the span of its series, first to last day.
	HistoryDays int
	// Assessable is false when the series is shorter than the audit's
	// minimum history: no day of it could be judged, so "none" would claim
	// what the data cannot carry.
	Assessable bool
	Anomalous  int
}

// verdicts returns one verdict per organisation of the newest covenant
// (and any other that disclosed), given the audit's volume anomalies.
func (t *tables) verdicts(anomalous map[string]int) []volumeVerdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	parties := map[string]bool{}
	for p := range t.days {
		parties[p] = true
	}
	if t.cov != nil {
		for _, p := range t.cov.Parties {
			parties[p.ID] = true
		}
	}
	var out []volumeVerdict
	for p := range parties {
		v := volumeVerdict{Party: p, Name: label(t.cov, "organisatie", p), Anomalous: anomalous[p]}
		if series := t.days[p]; len(series) > 0 {
			first, last := int64(1<<62), int64(-1<<62)
			for d := range series {
				first, last = min(first, d), max(last, d)
			}
			v.HistoryDays = int(last - first)
			v.Assessable = v.HistoryDays >= audit.VolumeMinHistoryDays
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b volumeVerdict) int { return strings.Compare(a.Party, b.Party) })
	return out
}

// scan counts the copy's entries [from, to); build says this is the first
// count, beside the follower.
func (t *tables) scan(ctx context.Context, x *index.Index, from, to uint64, build bool) error {
	return x.Entries(ctx, from, to, func(e *audit.Entry) error {
		var d *events.Disclosure
		var cov *events.Covenant
		if rec, err := verifier.ParseLeafRecord(e.LeafRecord); err == nil && e.Body != nil {
			switch rec.Type {
			case verifier.EntryDisclosure:
				d = disclosureOf(e.Body)
			case verifier.EntryCovenant:
				if sc, err := events.ParseSignedCovenant(e.Body); err == nil {
					cov = sc.Covenant
				}
			}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if build {
			t.builtTo = e.Index + 1
			if t.erasedEarly[e.Index] {
				return nil
			}
		}
		if d != nil {
			t.add(d, 1)
		}
		if cov != nil && (t.cov == nil || e.Index >= t.covLeaf) {
			t.cov, t.covLeaf = cov, e.Index
		}
		return nil
	})
}

// erase takes an erased disclosure out of the tables.
func (t *tables) erase(e index.Erased) {
	d := disclosureOf(e.Body)
	if d == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.building && e.Leaf >= t.builtTo && e.Leaf < t.buildEnd {
		t.erasedEarly[e.Leaf] = true
		return
	}
	t.add(d, -1)
}

// startBuild marks the first count of [0, size) as under way; the
// follower may commit and erase from then on.
func (t *tables) startBuild(size uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.building, t.builtTo, t.buildEnd, t.erasedEarly = true, 0, size, map[uint64]bool{}
}

// buildTables counts the tables from what the copy held at startBuild.
func (s *Server) buildTables(ctx context.Context) error {
	s.tables.mu.Lock()
	end := s.tables.buildEnd
	s.tables.mu.Unlock()
	if err := s.tables.scan(ctx, s.idx, 0, end, true); err != nil {
		return fmt.Errorf("dashboard: the tables from the copy: %w", err)
	}
	s.tables.mu.Lock()
	s.tables.building, s.tables.ready, s.tables.erasedEarly = false, true, nil
	s.tables.mu.Unlock()
	return nil
}

// table is one dimension's table as the pages show it.
type table struct {
	ID, Title, Column string
	Months            []string
	Rows              []tableRow
	// Chart is the bar chart of the totals per month.
	Chart chart
}

type tableRow struct {
	ID, Label string
	Counts    []int
	Total     int
}

// chart is a bar chart drawn by the template as inline SVG: numbers and
// labels only, each escaped like any text.
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int
}

type bar struct {
	X, Y, W, H int
	Label      string
	Count      int
}

// label names an id of dimension dim with the covenant's words.
func label(c *events.Covenant, dim, id string) string {
	if c == nil {
		return id
	}
	switch dim {
	case "organisatie":
		return c.PartyName(id)
	case "doel":
		return c.PurposeLabel(id)
	case "categorie":
		return c.CategoryLabel(id)
	case "grondslag":
		return c.GroundLabel(id)
	}
	return id
}

// build returns the tables; every party of the newest covenant has a row
// in the organisations' table, with or without disclosures.
func (t *tables) build() []table {
	t.mu.Lock()
	defer t.mu.Unlock()
	monthSet := map[string]bool{}
	for _, dim := range t.counts {
		for _, row := range dim {
			for m, n := range row {
				if n != 0 {
					monthSet[m] = true
				}
			}
		}
	}
	months := make([]string, 0, len(monthSet))
	for m := range monthSet {
		months = append(months, m)
	}
	sort.Strings(months)
	var out []table
	for _, d := range dimensions {
		tb := table{ID: d.ID, Title: d.Title, Column: d.Column, Months: months}
		ids := map[string]bool{}
		for id := range t.counts[d.ID] {
			ids[id] = true
		}
		if d.ID == "organisatie" && t.cov != nil {
			for _, p := range t.cov.Parties {
				ids[p.ID] = true
			}
		}
		totals := make([]int, len(months))
		for id := range ids {
			r := tableRow{ID: id, Label: label(t.cov, d.ID, id), Counts: make([]int, len(months))}
			for i, m := range months {
				r.Counts[i] = t.counts[d.ID][id][m]
				r.Total += r.Counts[i]
				totals[i] += r.Counts[i]
			}
			tb.Rows = append(tb.Rows, r)
		}
		slices.SortFunc(tb.Rows, func(a, b tableRow) int {
			if a.Total != b.Total {
				return b.Total - a.Total
			}
			if a.ID < b.ID {
				return -1
			}
			return 1
		})
		tb.Chart = barChart(months, totals)
		out = append(out, tb)
	}
	return out
}

func barChart(months []string, totals []int) chart {
	c := chart{Height: 150}
	for _, n := range totals {
		c.Max = max(c.Max, n)
	}
	const w, gap, top = 46, 8, 125
	for i, n := range totals {
		h := 0
		if c.Max > 0 {
			h = n * (top - 20) / c.Max
		}
		c.Bars = append(c.Bars, bar{X: i * (w + gap), Y: top - h, W: w, H: h, Label: months[i], Count: n})
	}
	c.Width = max(len(totals)*(w+gap), 1)
	return c
}

func (s *Server) tablesPage(w http.ResponseWriter, r *http.Request, ss *session) {
	s.tables.mu.Lock()
	ready := s.tables.ready
	s.tables.mu.Unlock()
	s.render(w, "tabellen.html", ss, s.snapshot(), map[string]any{"Tables": s.tables.build(), "Ready": ready})
}

func (s *Server) tableCSV(w http.ResponseWriter, r *http.Request, _ *session) {
	dim := r.PathValue("dim")
	var tb *table
	for _, t := range s.tables.build() {
		if t.ID == dim {
			tb = &t
			break
		}
	}
	if tb == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+tb.ID+`.csv"`)
	cw := csv.NewWriter(w)
	head := append([]string{"id", csvCell(tb.Column)}, tb.Months...)
	_ = cw.Write(append(head, "totaal"))
	for _, row := range tb.Rows {
		cells := []string{csvCell(row.ID), csvCell(row.Label)}
		for _, n := range row.Counts {
			cells = append(cells, strconv.Itoa(n))
		}
		_ = cw.Write(append(cells, strconv.Itoa(row.Total)))
	}
	cw.Flush()
}
