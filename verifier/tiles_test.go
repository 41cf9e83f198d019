package verifier

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestTilePaths(t *testing.T) {
	for _, tc := range []struct {
		level int
		n     uint64
		width int
		path  string
	}{
		{0, 0, 256, "tile/0/000"},
		{0, 0, 1, "tile/0/000.p/1"},
		{1, 5, 255, "tile/1/005.p/255"},
		{2, 999, 256, "tile/2/999"},
		{0, 1000, 256, "tile/0/x001/000"},
		{3, 1234067, 256, "tile/3/x001/x234/067"},
		{63, 1234067, 7, "tile/63/x001/x234/067.p/7"},
		{0, 1<<64 - 1, 256, "tile/0/x018/x446/x744/x073/x709/x551/615"},
	} {
		if got := TilePath(tc.level, tc.n, tc.width); got != tc.path {
			t.Errorf("TilePath(%d, %d, %d) = %q, want %q", tc.level, tc.n, tc.width, got, tc.path)
		}
		level, n, width, entries, err := ParseTilePath(tc.path)
		if err != nil || level != tc.level || n != tc.n || width != tc.width || entries {
			t.Errorf("ParseTilePath(%q) = %d, %d, %d, %v, %v", tc.path, level, n, width, entries, err)
		}
		ep := EntryBundlePath(tc.n, tc.width)
		if want := "tile/entries/" + strings.SplitN(tc.path, "/", 3)[2]; ep != want {
			t.Errorf("EntryBundlePath(%d, %d) = %q, want %q", tc.n, tc.width, ep, want)
		}
		level, n, width, entries, err = ParseTilePath(ep)
		if err != nil || level != -1 || n != tc.n || width != tc.width || !entries {
			t.Errorf("ParseTilePath(%q) = %d, %d, %d, %v, %v", ep, level, n, width, entries, err)
		}
	}
}

// TestTilePathsMatchTlog checks the mapping to golang.org/x/mod/sumdb/tlog's
// own paths, which carry the height as an extra element.
func TestTilePathsMatchTlog(t *testing.T) {
	for _, n := range []int64{0, 1, 999, 1000, 1001, 123456789, 1 << 40} {
		for _, w := range []int{1, 100, 255, 256} {
			for _, l := range []int{0, 1, 5} {
				tp := tlog.Tile{H: 8, L: l, N: n, W: w}.Path()
				want := strings.Replace(tp, "tile/8/", "tile/", 1)
				if got := TilePath(l, uint64(n), w); got != want {
					t.Errorf("TilePath(%d, %d, %d) = %q, tlog says %q", l, n, w, got, want)
				}
			}
			tp := tlog.Tile{H: 8, L: -1, N: n, W: w}.Path()
			want := strings.Replace(tp, "tile/8/data/", "tile/entries/", 1)
			if got := EntryBundlePath(uint64(n), w); got != want {
				t.Errorf("EntryBundlePath(%d, %d) = %q, tlog says %q", n, w, got, want)
			}
		}
	}
}

func TestParseTilePathRefuses(t *testing.T) {
	for _, p := range []string{
		"",
		"tile",
		"tile/",
		"tile/0",
		"tile/0/",
		"/tile/0/000",
		"tile/0/000/",
		"tiles/0/000",
		"tile/64/000",
		"tile/00/000",
		"tile/01/000",
		"tile/-1/000",
		"tile/+1/000",
		"tile/data/000",
		"tile/8/0/000",
		"tile/0/0",
		"tile/0/00",
		"tile/0/0000",
		"tile/0/x000/001",
		"tile/0/001/002",
		"tile/0/x001/x002",
		"tile/0/x01/002",
		"tile/0/x0001/002",
		"tile/0/X001/002",
		"tile/0/xabc/002",
		"tile/0/x001//002",
		"tile/0/000.p/0",
		"tile/0/000.p/256",
		"tile/0/000.p/01",
		"tile/0/000.p/",
		"tile/0/000.p",
		"tile/0/000.p/1/2",
		"tile/0/000.p/1.p/2",
		"tile/0/x001.p/5/000",
		"tile/0/ 00",
		"tile/0/x018/x446/x744/x073/x709/x551/616",
		"tile/0/x001/x018/x446/x744/x073/x709/x551/615",
		"tile/entries/",
		"tile/entries/0",
		"tile/entries/000.p/256",
		"tile/entries/x000/000",
	} {
		if _, _, _, _, err := ParseTilePath(p); !errors.Is(err, ErrMalformedTilePath) {
			t.Errorf("ParseTilePath(%q): err = %v, want ErrMalformedTilePath", p, err)
		}
	}
}

func TestEntryBundles(t *testing.T) {
	entries := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, MaxEntrySize), []byte("four")}
	var b []byte
	for _, e := range entries {
		b = AppendEntry(b, e)
	}
	if !bytes.HasPrefix(b, []byte{0, 3, 'o', 'n', 'e', 0, 0, 0xff, 0xff, 7}) {
		t.Errorf("bundle starts %x", b[:10])
	}
	got, err := ParseEntryBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("%d entries, want %d", len(got), len(entries))
	}
	for i := range entries {
		if !bytes.Equal(got[i], entries[i]) {
			t.Errorf("entry %d differs", i)
		}
	}
	// Appending to a returned entry must not overwrite the next one.
	for i, e := range got {
		if cap(e) != len(e) {
			t.Errorf("entry %d has spare capacity %d into the bundle", i, cap(e)-len(e))
		}
	}

	full := []byte{}
	for range TileWidth {
		full = AppendEntry(full, []byte("x"))
	}
	if got, err := ParseEntryBundle(full); err != nil || len(got) != TileWidth {
		t.Errorf("full bundle: %d entries, %v", len(got), err)
	}
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"one byte":        {0},
		"short entry":     {0, 3, 'a', 'b'},
		"trailing byte":   append(AppendEntry(nil, []byte("a")), 0),
		"257 entries":     AppendEntry(bytes.Clone(full), []byte("x")),
		"length too long": {0xff, 0xff, 1},
	} {
		if _, err := ParseEntryBundle(bad); !errors.Is(err, ErrMalformedEntryBundle) {
			t.Errorf("%s: err = %v, want ErrMalformedEntryBundle", name, err)
		}
	}

	defer func() {
		if recover() == nil {
			t.Error("AppendEntry accepted an entry of 65536 bytes")
		}
	}()
	AppendEntry(nil, make([]byte, MaxEntrySize+1))
}

func FuzzParseTilePath(f *testing.F) {
	for _, p := range []string{"tile/0/000", "tile/3/x001/x234/067.p/7", "tile/entries/x001/000.p/255",
		"tile/63/x018/x446/x744/x073/x709/x551/615", "tile/0/000.p/256", "tile/entries/000"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		level, n, width, entries, err := ParseTilePath(p)
		if err != nil {
			if !errors.Is(err, ErrMalformedTilePath) {
				t.Fatalf("error %v does not wrap ErrMalformedTilePath", err)
			}
			return
		}
		if width < 1 || width > TileWidth {
			t.Fatalf("%q: width %d", p, width)
		}
		// One path per tile: what parses formats back identically.
		var again string
		if entries {
			if level != -1 {
				t.Fatalf("%q: entry bundle with level %d", p, level)
			}
			again = EntryBundlePath(n, width)
		} else {
			if level < 0 || level > MaxTileLevel {
				t.Fatalf("%q: level %d", p, level)
			}
			again = TilePath(level, n, width)
		}
		if again != p {
			t.Fatalf("ParseTilePath(%q) formats back as %q", p, again)
		}
	})
}

func FuzzParseEntryBundle(f *testing.F) {
	var golden []byte
	for _, g := range goldenRecords {
		golden = AppendEntry(golden, readGoldenHex(f, g.file))
	}
	f.Add(golden)
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseEntryBundle(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedEntryBundle) {
				t.Fatalf("error %v does not wrap ErrMalformedEntryBundle", err)
			}
			return
		}
		if len(entries) == 0 || len(entries) > TileWidth {
			t.Fatalf("%d entries", len(entries))
		}
		var again []byte
		for _, e := range entries {
			again = AppendEntry(again, e)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("bundle does not re-encode to itself")
		}
	})
}
