package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
)

// TestTileIndexBeyondTheUint64Leaves asks for tiles whose first leaf,
// index*256, does not fit in 64 bits: 2^56 * 256 wraps to 0, and a check
// that multiplies would serve tile 000 (full width, cached as immutable)
// under another tile's name.
func TestTileIndexBeyondTheUint64Leaves(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	f.grow(300)
	const wraps = uint64(1) << 56
	for _, n := range []uint64{wraps, wraps + 1, 1<<64 - 1} {
		for _, p := range []string{
			verifier.EntryBundlePath(n, 256), verifier.EntryBundlePath(n, 5),
			verifier.TilePath(0, n, 256), verifier.TilePath(0, n, 5),
			verifier.TilePath(1, n, 1),
		} {
			if resp, _ := f.get("/"+p, ""); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /%s: %s, want 404", p, resp.Status)
			}
		}
	}
	// The tiles it would wrap to are there.
	f.wantStatus("/tile/entries/000", "", http.StatusOK)
	f.wantStatus("/tile/1/000.p/1", "", http.StatusOK)
}
