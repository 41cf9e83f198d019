// Package sourcetest is the conformance suite of audit.Source, the seam
// through which the FG's audit reads a log: the clauses written on
// audit.Source and its optional interfaces (TileSource, WitnessSource,
// ErasureSource), checked on any implementation, and a field-by-field
// comparison of the reports audit.Run makes from several sources over the
// same log.
//
// A source's tests call Check on a source over a log that holds at least
// a few hundred entries, and Same on the reports of every source over that
// log:
//
//	sourcetest.Check(t, "store", storeSource, keys)
//	sourcetest.Same(t, map[string]*audit.Report{"ledger": a, "store": b, "http": c})
//
// The three implementations (the running ledger, its stopped store and its
// HTTP API) are held to it in ledger/auditsource_suite_test.go; the suite's
// own tests show that a source breaking each clause is caught.
//
// # Clauses and their checks
//
//	| clause              | what Check does                                                                 |
//	|---------------------|---------------------------------------------------------------------------------|
//	| checkpoints-order   | Checkpoints: Seq strictly ascending from at least 1, every note non-empty        |
//	| entries-range       | Entries(from, to): only indices in [from, to), strictly ascending                 |
//	| entries-split       | the walk of [0, n) equals, byte for byte, the walks of [0, k) and [k, n)         |
//	| entries-stop        | an error returned by fn stops the walk and is returned (errors.Is)               |
//	| entries-fresh       | each Entry handed to fn is its own: keeping it after fn returns is safe          |
//	| tiles               | TileSource: hash i of LeafTile(n) is the leaf hash of entry n*256+i's record     |
//	| witnessed-order     | WitnessSource: Seq strictly ascending, every note non-empty                       |
//	| erasures-unique     | ErasureSource: proposal ids are unique                                           |
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// TB is the part of testing.TB the suite uses, so that its own tests can
// check that a broken source fails it.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Context() context.Context
}

var _ TB = (*testing.T)(nil)

// errStop is what the suite's fn returns to stop a walk.
var errStop = errors.New("sourcetest: stop here")

// Check holds src to every clause of audit.Source's contract, and of the
// optional interfaces it implements; keys open the newest checkpoint, whose
// size bounds the walks. It reads the whole log several times.
func Check(t TB, name string, src audit.Source, keys *verifier.LogKeys) {
	t.Helper()
	ctx := t.Context()
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		t.Fatalf("%s: Checkpoints: %v", name, err)
	}
	if len(cps) == 0 {
		t.Fatalf("%s: Checkpoints returned none; the suite needs a log with checkpoints", name)
	}
	checkOrder(t, name+": checkpoints-order", cps)
	newest, err := verifier.OpenCheckpoint(cps[len(cps)-1].Note, keys)
	if err != nil {
		t.Fatalf("%s: the newest checkpoint does not open with the log's keys: %v", name, err)
	}
	size := newest.Size

	// entries-range and entries-fresh (checked by every walk): the whole log.
	all := walk(t, name, src, 0, size)
	if uint64(len(all)) != size {
		t.Errorf("%s: entries-range: the walk of [0, %d) gave %d entries (a log without erasures of leaf records has one per index)", name, size, len(all))
	}

	// entries-split: sub-ranges give the same entries as the whole walk.
	for _, k := range []uint64{1, size / 3, size / 2, size - 1} {
		if k == 0 || k >= size {
			continue
		}
		left, right := walk(t, name, src, 0, k), walk(t, name, src, k, size)
		if !sameEntries(append(left, right...), all) {
			t.Errorf("%s: entries-split: [0, %d) and [%d, %d) do not add up to the walk of [0, %d)", name, k, k, size, size)
		}
	}
	if mid := walk(t, name, src, size/4, size/4+7); !sameEntries(mid, window(all, size/4, size/4+7)) {
		t.Errorf("%s: entries-split: [%d, %d) differs from the same indices of the whole walk", name, size/4, size/4+7)
	}

	// entries-stop: the walk ends at the first error of fn.
	calls := 0
	err = src.Entries(ctx, 0, size, func(*audit.Entry) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("%s: entries-stop: fn's error came back as %v", name, err)
	}
	if calls != 3 {
		t.Errorf("%s: entries-stop: fn was called %d times after it returned an error at the 3rd", name, calls)
	}

	if ts, ok := src.(audit.TileSource); ok {
		checkTiles(t, name, ts, all, size)
	}
	if ws, ok := src.(audit.WitnessSource); ok {
		w, err := ws.WitnessedCheckpoints(ctx)
		if err != nil {
			t.Errorf("%s: WitnessedCheckpoints: %v", name, err)
		} else {
			checkOrder(t, name+": witnessed-order", w)
		}
	}
	if es, ok := src.(audit.ErasureSource); ok {
		ps, err := es.ErasureProposals(ctx)
		if err != nil {
			t.Errorf("%s: ErasureProposals: %v", name, err)
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if seen[p.ID] {
				t.Errorf("%s: erasures-unique: proposal %s listed twice", name, p.ID)
			}
			seen[p.ID] = true
		}
	}
}

func checkOrder(t TB, what string, cps []audit.StoredCheckpoint) {
	t.Helper()
	var last uint64
	for i, c := range cps {
		if c.Seq <= last {
			t.Errorf("%s: checkpoint %d has number %d after %d", what, i, c.Seq, last)
		}
		if len(c.Note) == 0 {
			t.Errorf("%s: checkpoint %d (number %d) is empty", what, i, c.Seq)
		}
		last = c.Seq
	}
}

// walk returns the entries of [from, to), checking entries-range.
func walk(t TB, name string, src audit.Source, from, to uint64) []*audit.Entry {
	t.Helper()
	var out, kept []*audit.Entry // copies made when handed, and the Entries as handed
	var last uint64              // the index before, read when handed (a kept Entry may change: entries-fresh)
	err := src.Entries(t.Context(), from, to, func(e *audit.Entry) error {
		if e.Index < from || e.Index >= to {
			return fmt.Errorf("entries-range: index %d outside [%d, %d)", e.Index, from, to)
		}
		if len(out) > 0 && e.Index <= last {
			return fmt.Errorf("entries-range: index %d after %d", e.Index, last)
		}
		last = e.Index
		kept = append(kept, e)
		out = append(out, &audit.Entry{Index: e.Index, LeafRecord: bytes.Clone(e.LeafRecord), Body: bytes.Clone(e.Body),
			BodyError: e.BodyError, Findings: slices.Clone(e.Findings)})
		return nil
	})
	if err != nil {
		t.Fatalf("%s: Entries(%d, %d): %v", name, from, to, err)
	}
	if !sameEntries(kept, out) {
		t.Errorf("%s: entries-fresh: entries kept from the walk of [%d, %d) changed after fn returned (a reused Entry or buffer)", name, from, to)
	}
	return out
}

func window(all []*audit.Entry, from, to uint64) []*audit.Entry {
	var out []*audit.Entry
	for _, e := range all {
		if e.Index >= from && e.Index < to {
			out = append(out, e)
		}
	}
	return out
}

func sameEntries(a, b []*audit.Entry) bool {
	return slices.EqualFunc(a, b, func(x, y *audit.Entry) bool {
		return x.Index == y.Index && bytes.Equal(x.LeafRecord, y.LeafRecord) && bytes.Equal(x.Body, y.Body) &&
			x.BodyError == y.BodyError && reflect.DeepEqual(x.Findings, y.Findings)
	})
}

func checkTiles(t TB, name string, ts audit.TileSource, all []*audit.Entry, size uint64) {
	t.Helper()
	byIndex := map[uint64][]byte{}
	for _, e := range all {
		byIndex[e.Index] = e.LeafRecord
	}
	for n := uint64(0); n*verifier.TileWidth < size; n++ {
		width := int(min(verifier.TileWidth, size-n*verifier.TileWidth))
		tile, err := ts.LeafTile(t.Context(), n, width)
		if err != nil {
			t.Errorf("%s: tiles: LeafTile(%d, %d): %v", name, n, width, err)
			continue
		}
		if len(tile) < width*32 {
			t.Errorf("%s: tiles: LeafTile(%d, %d) has %d bytes", name, n, width, len(tile))
			continue
		}
		for i := range width {
			idx := n*verifier.TileWidth + uint64(i)
			rec, ok := byIndex[idx]
			if !ok {
				continue
			}
			if h := verifier.LeafHash(rec); !bytes.Equal(tile[i*32:(i+1)*32], h[:]) {
				t.Errorf("%s: tiles: hash %d of tile %d is not the leaf hash of entry %d's record", name, i, n, idx)
				break
			}
		}
	}
}

// Same fails t unless every report equals the first (by name order),
// naming the first field path where each differs.
func Same(t TB, reports map[string]*audit.Report) {
	t.Helper()
	names := make([]string, 0, len(reports))
	for n := range reports {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) < 2 {
		t.Fatalf("Same needs at least two reports, got %d", len(names))
	}
	base := reports[names[0]]
	for _, n := range names[1:] {
		if path, a, b := firstDiff(reflect.ValueOf(base), reflect.ValueOf(reports[n]), "Report"); path != "" {
			t.Errorf("the %s and %s sources' reports differ at %s: %s vs %s", names[0], n, path, a, b)
		}
	}
}

// firstDiff walks two values of one type and returns the path of the
// first difference and the two values there, or "".
func firstDiff(a, b reflect.Value, path string) (string, string, string) {
	if a.Kind() != b.Kind() {
		return path, a.Kind().String(), b.Kind().String()
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path, nilness(a), nilness(b)
			}
			return "", "", ""
		}
		return firstDiff(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		if a.Type() != b.Type() {
			return path, a.Type().String(), b.Type().String()
		}
		if a.CanInterface() && reflect.DeepEqual(a.Interface(), b.Interface()) {
			return "", "", ""
		}
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				continue
			}
			if p, x, y := firstDiff(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p, x, y
			}
		}
		// Equal exported fields: the difference, if any, is unexported
		// and not part of the report.
		return "", "", ""
	case reflect.Slice, reflect.Array:
		if a.Kind() == reflect.Slice && a.Len() != b.Len() {
			return path + ".len", fmt.Sprint(a.Len()), fmt.Sprint(b.Len())
		}
		for i := range a.Len() {
			if p, x, y := firstDiff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p, x, y
			}
		}
		return "", "", ""
	case reflect.Map:
		if a.Len() != b.Len() {
			return path + ".len", fmt.Sprint(a.Len()), fmt.Sprint(b.Len())
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return fmt.Sprintf("%s[%v]", path, k), "present", "missing"
			}
			if p, x, y := firstDiff(a.MapIndex(k), bv, fmt.Sprintf("%s[%v]", path, k)); p != "" {
				return p, x, y
			}
		}
		return "", "", ""
	default:
		if a.CanInterface() && !reflect.DeepEqual(a.Interface(), b.Interface()) {
			return path, fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface())
		}
		return "", "", ""
	}
}

func nilness(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	return "set"
}
