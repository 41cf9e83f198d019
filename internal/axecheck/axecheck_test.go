package axecheck

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestAxeFindsViolations: the check is not one that cannot fail. A page
// with an image without text, a field without a label and grey on grey
// gives violations of those rules; the same page made right gives none.
func TestAxeFindsViolations(t *testing.T) {
	Script(t)
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed: %v", err)
		}
		t.Skip("chromium is not installed")
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(alloc)
	defer cancel2()
	open := func(html string) {
		if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,"+url.PathEscape(html))); err != nil {
			t.Fatal(err)
		}
	}
	open(`<!doctype html><html lang="nl"><head><title>fout</title></head><body><main><h1>Fout</h1><img src="x.png"><input id="a"><p style="color:#aaa;background:#bbb">grijs</p></main></body></html>`)
	got := strings.Join(Violations(t, ctx, "bad page"), "\n")
	for _, rule := range []string{"image-alt", "label", "color-contrast"} {
		if !strings.Contains(got, "axe-core "+rule+" ") {
			t.Errorf("axe-core did not report %s; it reported:\n%s", rule, got)
		}
	}
	open(`<!doctype html><html lang="nl"><head><title>goed</title></head><body><main><h1>Goed</h1><img src="x.png" alt="logo"><label for="a">Naam</label><input id="a"><p>zwart</p></main></body></html>`)
	if vs := Violations(t, ctx, "good page"); len(vs) != 0 {
		t.Errorf("a page made right: %v", vs)
	}
}
