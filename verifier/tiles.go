package verifier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// The log is published as C2SP tlog-tiles of height 8 (256 hashes or
// entries per tile):
//
//	tile/<L>/<N>[.p/<W>]      hash tile at level L (0..63), index N
//	tile/entries/<N>[.p/<W>]  entry bundle N: the data of leaves 256N..256N+W-1
//
// W, the width, is given only for a partial tile (1..255); a full tile has
// 256 elements and no ".p/" part. N is written in decimal, left-padded with
// zeros to a multiple of three digits and cut into groups of three, every
// group but the last prefixed with "x": 5 is "005", 1234067 is
// "x001/x234/067". A hash tile holds W consecutive 32-byte hashes; an entry
// bundle holds W entries, each a 2-byte big-endian length and that many
// bytes (here: a leaf record).
//
// The paths are relative to the log's URL, without a leading slash.

// TileHeight is the height of Spoor's tiles: 2^8 = 256 elements each.
const TileHeight = 8

// TileWidth is the number of hashes or entries in a full tile.
const TileWidth = 1 << TileHeight

// MaxTileLevel is the highest tile level a path may name.
const MaxTileLevel = 63

// MaxEntrySize is the largest entry an entry bundle can carry.
const MaxEntrySize = 1<<16 - 1

// ErrMalformedTilePath is returned (wrapped, with detail) by ParseTilePath.
var ErrMalformedTilePath = errors.New("verifier: malformed tile path")

// ErrMalformedEntryBundle is returned (wrapped, with detail) by
// ParseEntryBundle.
var ErrMalformedEntryBundle = errors.New("verifier: malformed entry bundle")

// TilePath returns the path of the hash tile at level (0..63) and index n,
// of width 1..256 (256 is a full tile). Out-of-range arguments give a path
// that ParseTilePath refuses.
func TilePath(level int, n uint64, width int) string {
	return "tile/" + strconv.Itoa(level) + "/" + tileIndexPath(n, width)
}

// EntryBundlePath returns the path of entry bundle n of width 1..256 (256 is
// a full bundle).
func EntryBundlePath(n uint64, width int) string {
	return "tile/entries/" + tileIndexPath(n, width)
}

// tileIndexPath formats "<N>[.p/<W>]".
func tileIndexPath(n uint64, width int) string {
	digits := strconv.FormatUint(n, 10)
	if pad := (3 - len(digits)%3) % 3; pad > 0 {
		digits = strings.Repeat("0", pad) + digits
	}
	var b strings.Builder
	b.Grow(len(digits)/3*5 + 8)
	for i := 0; i < len(digits); i += 3 {
		if i+3 < len(digits) {
			b.WriteByte('x')
			b.WriteString(digits[i : i+3])
			b.WriteByte('/')
		} else {
			b.WriteString(digits[i:])
		}
	}
	if width != TileWidth {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(width))
	}
	return b.String()
}

// ParseTilePath parses a hash tile or entry bundle path, accepting only the
// one form TilePath and EntryBundlePath write: no leading zeros beyond the
// three-digit groups, no empty or all-zero leading group, no ".p/256" or
// ".p/0", level 0..63. For an entry bundle, entries is true and level is -1
// (golang.org/x/mod/sumdb/tlog's convention for data tiles). Width is 256
// for a full tile.
func ParseTilePath(p string) (level int, n uint64, width int, entries bool, err error) {
	fail := func(format string, args ...any) (int, uint64, int, bool, error) {
		return 0, 0, 0, false, fmt.Errorf("%w: %q: %s", ErrMalformedTilePath, p, fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return fail("does not start with tile/")
	}
	first, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return fail("no tile index")
	}
	if first == "entries" {
		entries, level = true, -1
	} else {
		l, ok := parseDecimal(first, MaxTileLevel)
		if !ok {
			return fail("level is not a decimal number 0..%d", MaxTileLevel)
		}
		level = int(l)
	}

	width = TileWidth
	if idx, w, ok := strings.Cut(rest, ".p/"); ok {
		wv, ok := parseDecimal(w, TileWidth-1)
		if !ok || wv == 0 {
			return fail("partial width is not a decimal number 1..%d", TileWidth-1)
		}
		rest, width = idx, int(wv)
	}

	groups := strings.Split(rest, "/")
	if len(groups) > 7 { // 2^64-1 has 20 digits: at most 7 groups.
		return fail("tile index is too long")
	}
	for i, g := range groups {
		last := i == len(groups)-1
		if !last {
			var ok bool
			if g, ok = strings.CutPrefix(g, "x"); !ok {
				return fail("index group %d lacks its x prefix", i+1)
			}
		}
		if len(g) != 3 || !allDigits(g) {
			return fail("index group %d is not three digits", i+1)
		}
		if i == 0 && !last && g == "000" {
			return fail("index has a leading zero group")
		}
		d := uint64(g[0]-'0')*100 + uint64(g[1]-'0')*10 + uint64(g[2]-'0')
		hi, lo := bits.Mul64(n, 1000)
		sum, carry := bits.Add64(lo, d, 0)
		if hi != 0 || carry != 0 {
			return fail("tile index overflows 64 bits")
		}
		n = sum
	}
	return level, n, width, entries, nil
}

// allDigits reports whether s is made of ASCII digits only.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDecimal parses a decimal number without sign or leading zeros, at
// most max.
func parseDecimal(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' || !allDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, false
	}
	return v, true
}

// AppendEntry appends one entry to an entry bundle: its length as 2 bytes
// big-endian, then its bytes. An entry longer than MaxEntrySize cannot be
// represented; AppendEntry panics on one, since that is a bug in the caller
// (leaf records are at most MaxLeafRecordSize bytes).
func AppendEntry(bundle []byte, e []byte) []byte {
	if len(e) > MaxEntrySize {
		panic(fmt.Sprintf("verifier: AppendEntry: entry of %d bytes exceeds %d", len(e), MaxEntrySize))
	}
	bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(e)))
	return append(bundle, e...)
}

// ParseEntryBundle splits an entry bundle into its entries, which alias b.
// It refuses an empty bundle, a truncated entry and a bundle of more than
// 256 entries.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformedEntryBundle)
	}
	var entries [][]byte
	for len(b) > 0 {
		if len(entries) == TileWidth {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformedEntryBundle, TileWidth)
		}
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: entry %d: truncated length", ErrMalformedEntryBundle, len(entries))
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b)-2 < n {
			return nil, fmt.Errorf("%w: entry %d: length %d but %d bytes follow", ErrMalformedEntryBundle, len(entries), n, len(b)-2)
		}
		entries = append(entries, b[2:2+n:2+n])
		b = b[2+n:]
	}
	return entries, nil
}
