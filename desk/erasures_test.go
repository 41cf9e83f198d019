package desk_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
)

var confirmForm = regexp.MustCompile(`action="/wissen/([0-9a-f-]{36})/bevestigen"`)

// TestDeskErasure, on both demo covenants: desk-1 proposes to erase one of
// the child's disclosures; the page offers desk-1 no confirmation and the
// ledger refuses one; desk-2 confirms and the disclosure's envelope is
// gone from the ledger; a leaf outside the desk's disclosures and a second
// proposal of the same leaf are refused in Dutch; a request's release
// form refuses a ground chosen without its tick, and a tick without a
// ground.
func TestDeskErasure(t *testing.T) {
	for _, name := range []string{"amersfoort", "waterweg"} {
		t.Run(name, func(t *testing.T) {
			f := newDeskFixture(t, name)
			c1, c2 := f.client(), f.client()
			csrf1 := f.signIn(c1, "desk-1")
			csrf2 := f.signIn(c2, "desk-2")
			leaf := f.leaves[1]

			// A link from the request page fills the number in.
			if code, body, _ := f.get(c1, fmt.Sprintf("/wissen?volgnummer=%d", leaf)); code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`value="%d"`, leaf)) {
				t.Fatalf("the erasure page with ?volgnummer: %d", code)
			}
			if code, _, body := f.post(c1, "/wissen", url.Values{"csrf": {csrf1}, "volgnummer": {fmt.Sprint(leaf)}, "grond": {"avg-17-1-x"}}); code != http.StatusUnprocessableEntity || !strings.Contains(body, "Kies de grond") {
				t.Errorf("a proposal with an unknown ground: %d", code)
			}
			code, loc, body := f.post(c1, "/wissen", url.Values{"csrf": {csrf1}, "volgnummer": {fmt.Sprint(leaf)}, "grond": {"avg-17-1-a"}})
			if code != http.StatusSeeOther || loc != "/wissen" {
				t.Fatalf("proposing: %d to %q: %s", code, loc, body)
			}
			_, page, _ := f.get(c1, "/wissen")
			if !strings.Contains(page, "Een tweede medewerker moet het bevestigen") || confirmForm.MatchString(page) {
				t.Error("the proposer's page: no flash, or a confirm button offered to the proposer")
			}
			// The same leaf again: refused with the reason.
			if code, _, body := f.post(c1, "/wissen", url.Values{"csrf": {csrf1}, "volgnummer": {fmt.Sprint(leaf)}, "grond": {"avg-17-1-d"}}); code != http.StatusConflict || !strings.Contains(body, "al een voorstel open") {
				t.Errorf("a second proposal of one leaf: %d", code)
			}
			// A leaf that is not a disclosure of the desk: the covenant's
			// own entry, leaf 0.
			if code, _, body := f.post(c1, "/wissen", url.Values{"csrf": {csrf1}, "volgnummer": {"0"}, "grond": {"avg-17-1-a"}}); code != http.StatusConflict || !strings.Contains(body, "volgnummer") {
				t.Errorf("a proposal of leaf 0: %d %s", code, body)
			}

			_, page, _ = f.get(c2, "/wissen")
			m := confirmForm.FindStringSubmatch(page)
			if m == nil {
				t.Fatal("desk-2 is not offered the confirmation")
			}
			// The proposer's own confirmation, sent anyway: the ledger refuses it.
			if code, _, body := f.post(c1, "/wissen/"+m[1]+"/bevestigen", url.Values{"csrf": {csrf1}}); code != http.StatusConflict || !strings.Contains(body, "tweede medewerker") {
				t.Errorf("the proposer confirming: %d", code)
			}
			if _, err := f.l.Entry(t.Context(), leaf); err != nil {
				t.Fatalf("the disclosure is gone before a second person confirmed: %v", err)
			}
			code, loc, body = f.post(c2, "/wissen/"+m[1]+"/bevestigen", url.Values{"csrf": {csrf2}})
			if code != http.StatusSeeOther || loc != "/wissen" {
				t.Fatalf("desk-2 confirming: %d to %q: %s", code, loc, body)
			}
			_, page, _ = f.get(c2, "/wissen")
			if !strings.Contains(page, "De melding is verwijderd") || !strings.Contains(page, "bevestigd en verwijderd") {
				t.Error("after confirming, the page does not say the disclosure was erased")
			}
			if _, err := f.l.Entry(t.Context(), leaf); !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("the disclosure after the confirmation: %v, want ledger.ErrNotFound", err)
			}

			// The release form's mistakes.
			id := f.register(c1, csrf1)
			other := f.leaves[2]
			for what, form := range map[string]url.Values{
				"a ground without its tick": {"grond-" + fmt.Sprint(other): {"avg-23"}},
				"a tick without a ground":   {"achterhouden": {fmt.Sprint(other)}},
			} {
				form.Set("csrf", csrf2)
				code, _, body := f.post(c2, "/verzoek/"+id+"/vrijgeven", form)
				if code != http.StatusUnprocessableEntity || !strings.Contains(body, `role="alert"`) {
					t.Errorf("release with %s: %d", what, code)
				}
			}
			if _, status, _ := f.get(c2, "/verzoek/"+id); !strings.Contains(status, "Wacht op vrijgave") {
				t.Error("a refused release form released the request")
			}
			f.noBSN("the erasure pages", page)
		})
	}
}
