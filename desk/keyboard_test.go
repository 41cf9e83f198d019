package desk_test

// The desk's main flow with the keyboard alone (WCAG 2.1.1 keyboard, 2.4.3
// focus order, 2.4.7 focus visible), on both demo covenants: desk-1 signs
// in and registers a request, desk-2 signs in, opens it from the list,
// withholds one disclosure on a ground and releases it, pressing only Tab,
// Shift+Tab, arrows, Space, Enter and typing. On every page the whole tab
// order is walked: each stop must show a focus outline, come after the one
// before in the page's order, and every control of the page must be
// reached.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// focused describes document.activeElement: a selector-like name, whether
// it shows a visible focus indicator, and its index among all elements in
// document order.
type focused struct {
	Name    string `json:"name"`
	Visible bool   `json:"visible"`
	Order   int    `json:"order"`
	// Group is "radio:<name>" for a radio button, else "".
	Group string `json:"group"`
}

const focusedJS = `(() => {
  const e = document.activeElement;
  if (!e || e === document.body) return {name: "body", visible: false, order: -1};
  const s = getComputedStyle(e);
  const visible = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
  const all = Array.from(document.querySelectorAll("*"));
  let name = e.tagName.toLowerCase();
  if (e.id) name += "#" + e.id;
  else if (e.getAttribute("href")) name += "[href=" + e.getAttribute("href") + "]";
  else if (e.name) name += "[name=" + e.name + "]";
  const group = e.type === "radio" ? "radio:" + e.name : "";
  return {name, visible, order: all.indexOf(e), group};
})()`

// controlsJS names every control a keyboard user must be able to reach:
// links, buttons, fields (one per radio group: the group is one tab stop).
const controlsJS = `(() => {
  const seen = new Set(), out = [];
  for (const e of document.querySelectorAll("a[href], button, input, select, textarea")) {
    if (e.type === "hidden" || e.disabled || e.getClientRects().length === 0 && !e.classList.contains("skip")) continue;
    if (e.type === "radio") { if (seen.has(e.name)) continue; seen.add(e.name); out.push("radio:" + e.name); continue; }
    let name = e.tagName.toLowerCase();
    if (e.id) name += "#" + e.id;
    else if (e.getAttribute("href")) name += "[href=" + e.getAttribute("href") + "]";
    else if (e.name) name += "[name=" + e.name + "]";
    out.push(name);
  }
  return out;
})()`

func current(t *testing.T, ctx context.Context) focused {
	t.Helper()
	return value(t, ctx, "the focused element", chromedp.Evaluate[focused](focusedJS))
}

// walkTabOrder presses Tab from the top of the page until focus leaves the
// page's controls, and checks each stop. A page that focuses a field by
// itself (autofocus) may do so after the walk moved focus to the top: the
// walk then starts again, at most three times.
func walkTabOrder(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	want := value(t, ctx, page+": the controls", chromedp.Evaluate[[]string](controlsJS))
	for attempt := 1; ; attempt++ {
		stops := tabStops(t, ctx, page, len(want))
		if len(stops) > 0 && len(want) > 0 && stops[0].Name != want[0] && attempt < 3 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		reached := map[string]bool{}
		last := -1
		for _, f := range stops {
			if !f.Visible {
				t.Errorf("%s: %s has focus without a visible focus indicator", page, f.Name)
			}
			if f.Order <= last {
				t.Errorf("%s: Tab went back to %s, before the control it left", page, f.Name)
			}
			last = f.Order
			reached[f.Name] = true
			if f.Group != "" {
				reached[f.Group] = true // a radio button stands for its group
			}
		}
		for _, c := range want {
			if !reached[c] {
				t.Errorf("%s: %s cannot be reached with Tab (reached: %v)", page, c, keys(reached))
			}
		}
		return
	}
}

// tabStops moves focus to the top of the page and presses Tab until focus
// leaves the controls or comes back to one it held, returning each stop.
func tabStops(t *testing.T, ctx context.Context, page string, n int) []focused {
	t.Helper()
	run(t, ctx, page+": focus to the top", chromedp.Evaluate[chromedp.Void](
		`document.body.setAttribute("tabindex", "-1"); document.body.focus(); document.body.removeAttribute("tabindex")`))
	var stops []focused
	seen := map[int]bool{} // by place in the page: two links may look alike
	for i := 0; i < 3*n+5; i++ {
		run(t, ctx, page+": Tab", chromedp.KeyEvent(kb.Tab))
		f := current(t, ctx)
		if f.Name == "body" || seen[f.Order] {
			break // past the last control, or wrapped around
		}
		seen[f.Order] = true
		stops = append(stops, f)
	}
	return stops
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// tabTo presses Tab until the focused element matches css, and fails when
// it never does.
func tabTo(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	for range 60 {
		if value(t, ctx, "matching "+css, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, css))) {
			return
		}
		run(t, ctx, "Tab towards "+css, chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("Tab never reached %s", css)
}

func TestDeskByKeyboard(t *testing.T) {
	ctx := browser(t)
	for _, name := range []string{"amersfoort", "waterweg"} {
		t.Run(name, func(t *testing.T) {
			f := newDeskFixture(t, name)
			base := f.desk.URL
			signIn := func(user string) {
				f.used[user] = f.code(user)
				run(t, ctx, "the sign-in page", chromedp.Navigate(base+"/inloggen"), chromedp.WaitVisible(chromedp.ID("naam")))
				walkTabOrder(t, ctx, name+": sign-in")
				tabTo(t, ctx, "#naam")
				run(t, ctx, "typing the name", chromedp.KeyEvent(user))
				tabTo(t, ctx, "#wachtwoord")
				run(t, ctx, "typing the password", chromedp.KeyEvent(f.users[user].password))
				tabTo(t, ctx, "#code")
				run(t, ctx, "typing the code and Enter", chromedp.KeyEvent(f.used[user]+kb.Enter), chromedp.WaitVisible(chromedp.CSS("form.uit")))
			}
			signIn("desk-1")
			walkTabOrder(t, ctx, name+": the list")
			tabTo(t, ctx, `nav a[href="/nieuw"]`)
			run(t, ctx, "Enter on Nieuw verzoek", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("nummer")))
			walkTabOrder(t, ctx, name+": new request")
			tabTo(t, ctx, "#nummer")
			run(t, ctx, "typing the number", chromedp.KeyEvent(f.child.BSN))
			tabTo(t, ctx, `input[name="relatie"]`)
			run(t, ctx, "Space on the first relation", chromedp.KeyEvent(" "))
			if !value(t, ctx, "the relation", chromedp.Evaluate[bool](`document.getElementById("relatie-ouder").checked`)) {
				t.Fatal("Space did not choose the parent")
			}
			tabTo(t, ctx, `main form button[type="submit"]`)
			run(t, ctx, "Enter on Verzoek vastleggen", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("status")))
			loc := value(t, ctx, "the location", chromedp.Location())
			m := requestURL.FindStringSubmatch(strings.TrimPrefix(loc, base))
			if m == nil {
				t.Fatalf("after registering by keyboard the browser is at %s", loc)
			}
			id := m[1]
			walkTabOrder(t, ctx, name+": the request, to its registrar")
			tabTo(t, ctx, "form.uit button")
			run(t, ctx, "Enter on Uitloggen", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("naam")))

			signIn("desk-2")
			tabTo(t, ctx, `a[href="/verzoek/`+id+`"]`)
			run(t, ctx, "Enter on the request", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("table.meldingen")))
			walkTabOrder(t, ctx, name+": the release form")
			withheld := f.leaves[0]
			tabTo(t, ctx, fmt.Sprintf("#achterhouden-%d", withheld))
			run(t, ctx, "Space on the disclosure", chromedp.KeyEvent(" "))
			tabTo(t, ctx, fmt.Sprintf("#grond-%d", withheld))
			// The first ground after "Geen grond".
			run(t, ctx, "choosing a ground", chromedp.KeyEvent(kb.ArrowDown))
			ground := value(t, ctx, "the ground", chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById("grond-%d").value`, withheld)))
			if ground == "" {
				t.Fatal("ArrowDown chose no ground")
			}
			tabTo(t, ctx, `main form button[type="submit"]`)
			run(t, ctx, "Enter on Antwoord vrijgeven", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("ul.downloads")))
			status := value(t, ctx, "the status", chromedp.Text(chromedp.ID("status")))
			if !strings.HasPrefix(status, "Vrijgegeven") {
				t.Fatalf("after releasing by keyboard the status is %q", status)
			}
			walkTabOrder(t, ctx, name+": the released request")
			run(t, ctx, "the erasure page", chromedp.Navigate(base+"/wissen"), chromedp.WaitVisible(chromedp.ID("volgnummer")))
			walkTabOrder(t, ctx, name+": erasures")
		})
	}
}
