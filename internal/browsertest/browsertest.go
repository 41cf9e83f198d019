// Package browsertest starts the real Chromium that the screens' tests drive
// from Go (chromedp): the desk's, the FG's console, the gateway's recording
// form. Tests only. Without chromium a test skips, except on CI (CI=true),
// where it fails: .ci/run installs Debian's chromium.
//
// Every step runs with a bound on it, never on the browser itself, and a
// failed step says where the browser was and what the page showed.
package browsertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// stepBound bounds one step (a navigation and its waits, or one read).
const stepBound = 30 * time.Second

// Browser starts one headless chromium with a window of width by height
// pixels (screenshots are taken at that width), closed at the test's end.
func Browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed at %s (CI installs it: apt-get install -y chromium): %v", ChromiumPath, err)
		}
		t.Skipf("chromium is not installed at %s; apt-get install -y chromium to run this test", ChromiumPath)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(width, height),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil {
			t.Logf("closing the browser: %v", err)
		}
		cancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// Run runs browser steps with a bound on them, and on failure says where
// the browser is and what its main element shows.
func Run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepBound)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		defer lcancel()
		loc, _ := chromedp.Run(lctx, chromedp.Location())
		text, _ := chromedp.Run(lctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("%s: %v (the browser is at %s, showing %q)", what, err, loc, text)
	}
}

// Value runs one browser action that reads a value, with a bound.
func Value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepBound)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}
