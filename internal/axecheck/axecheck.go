// Package axecheck runs axe-core (the accessibility engine, an npm package
// that .ci/run installs in .ci/axe) inside a page that a chromedp test has
// open, and fails the test on every violation of a WCAG 2.1 A or AA rule.
// Tests only: the desk's, the dashboard's, the verify page's and the
// parent's report's browser tests call it on each page they visit.
//
// Where axe-core comes from: SPOOR_AXE_JS names axe.min.js; without it,
// .ci/axe/node_modules/axe-core/axe.min.js in the checkout. When neither
// is there the test skips, except on CI (CI=true, or SPOOR_AXE_JS set, as
// .ci/run sets it), where it fails: a
// check that did not run must not look like one that passed.
package axecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Tags are the axe-core rule tags checked: WCAG 2.0 and 2.1, levels A and AA.
var Tags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

var (
	scriptOnce sync.Once
	script     string
	scriptErr  error
	scriptPath string
)

// path is where axe.min.js is looked for.
func path() string {
	if p := os.Getenv("SPOOR_AXE_JS"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".ci", "axe", "node_modules", "axe-core", "axe.min.js")
}

// Script returns axe-core's source, skipping the test (failing it on CI)
// when it is not installed.
func Script(t testing.TB) string {
	t.Helper()
	scriptOnce.Do(func() {
		scriptPath = path()
		var b []byte
		b, scriptErr = os.ReadFile(scriptPath)
		script = string(b)
	})
	if scriptErr != nil {
		msg := fmt.Sprintf("axe-core is not installed at %s (cd .ci/axe && npm ci, as .ci/run does): %v", scriptPath, scriptErr)
		// .ci/run names the file: then a missing one is a failure, as on CI.
		if os.Getenv("CI") == "true" || os.Getenv("SPOOR_AXE_JS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return script
}

// violation is what axe-core reports of one broken rule.
type violation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// Check runs axe-core on the page open in ctx and reports each violation
// of the WCAG 2.1 A and AA rules as a test error naming page. It returns
// the number of violations. The page's Content-Security-Policy allows no
// script; the DevTools protocol's evaluation is not a page script and is
// not bound by it.
func Check(t testing.TB, ctx context.Context, page string) int {
	t.Helper()
	vs := Violations(t, ctx, page)
	for _, v := range vs {
		t.Errorf("%s", v)
	}
	return len(vs)
}

// Violations runs axe-core on the page open in ctx and returns each
// violation of the WCAG 2.1 A and AA rules, described in a line or more.
func Violations(t testing.TB, ctx context.Context, page string) []string {
	t.Helper()
	src := Script(t)
	tags, _ := json.Marshal(Tags)
	js := src + `;
(async () => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: ` + string(tags) + `}, resultTypes: ['violations']});
  return JSON.stringify(r.violations);
})()`
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := chromedp.Run(sctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe-core on %s: %v", page, err)
	}
	var vs []violation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("axe-core on %s: its answer: %v", page, err)
	}
	var out2 []string
	for _, v := range vs {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprintf("%v: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " ")))
		}
		out2 = append(out2, fmt.Sprintf("%s: axe-core %s (%s): %s (%s)\n  %s", page, v.ID, v.Impact, v.Help, v.HelpURL, strings.Join(where, "\n  ")))
	}
	return out2
}
