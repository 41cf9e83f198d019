package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
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

// TestWrongTokenOnAPublicRoute: a wrong or malformed bearer token is
// refused (401) on the public routes too, as docs/security.md says; it is
// never served as anonymous.
func TestWrongTokenOnAPublicRoute(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	f.grow(3)
	id := f.events[0].d.ID
	sum := sha256.Sum256(f.events[0].env)
	public := []string{
		"/checkpoint", "/tile/0/000.p/3", "/tile/entries/000.p/3", "/v1/proof/inclusion?index=1",
		"/v1/proof/consistency?old=1", "/v1/events/" + id + "/status?sha256=" + hex.EncodeToString(sum[:]), "/healthz", "/metrics",
	}
	for _, p := range public {
		if resp, b := f.get(p, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %s: %s", p, resp.Status, b)
		}
		if resp, b := f.get(p, fgToken); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the FG's token: %s: %s", p, resp.Status, b)
		}
		for _, auth := range []string{"Bearer not-a-token", "Bearer ", "Bearer", "Basic Zm9vOmJhcg==", fgToken} {
			req, err := http.NewRequest(http.MethodGet, f.srv.URL+p, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", auth)
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: %s, want 401", p, auth, resp.Status)
			}
		}
	}
}
