package verifypage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// TestWasmDependencies: the verifier as the browser gets it (GOOS=js
// GOARCH=wasm) carries no backend, no HTTP client and none of the FG's
// audit engine: the page is to stay small, and a parent's verifier has
// nothing to connect to. The layering test sees the host build only.
func TestWasmDependencies(t *testing.T) {
	cmd := exec.Command(goTool(), "list", "-deps", WasmPackage)
	cmd.Env = append(cmd.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !strings.Contains(string(out), "github.com/spoor-ledger/spoor/verifier/report\n") {
		t.Fatalf("go list listed %d packages, without the report: %s", len(deps), out)
	}
	for _, d := range deps {
		for _, bad := range []string{"net/http", "os/exec", "github.com/spoor-ledger/spoor/ledger", "github.com/spoor-ledger/spoor/verifier/audit",
			"github.com/spoor-ledger/spoor/verifier/tlogclient", "github.com/cockroachdb/pebble", "github.com/nats-io/", "github.com/prometheus/"} {
			if d == bad || strings.HasPrefix(d, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(d, bad)) {
				t.Errorf("the browser's verifier depends on %s", d)
			}
		}
	}
}

func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(p); err == nil {
		return p
	}
	return "go"
}

func testKeys(t *testing.T) Keys {
	t.Helper()
	_, logV, _, cosV, err := verifier.GenerateLogKeys("spoor.example/page")
	if err != nil {
		t.Fatal(err)
	}
	_, adminV, err := events.GenerateAdminKey("beheer.example")
	if err != nil {
		t.Fatal(err)
	}
	return Keys{Log: logV, Cosigner: cosV, Admin: adminV}
}

// TestRenderPage: the page carries the pinned keys and their fingerprints,
// a policy that allows no connection and exactly its two inline scripts by
// hash, and the verifier inline; it refuses keys that are not keys and a
// verifier that is not WebAssembly.
func TestRenderPage(t *testing.T) {
	keys := testKeys(t)
	wasm := append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte("verifier"), 1000)...)
	exec := []byte("// wasm_exec.js stand-in\nclass Go {}\n")
	page, err := RenderPage(Page{Keys: keys, Wasm: wasm, WasmExecJS: exec})
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	logKeys, _ := verifier.ParseLogKeys(keys.Log, keys.Cosigner)
	for _, want := range []string{keys.Log, keys.Cosigner, keys.Admin, verifier.NoteKeyFingerprint(logKeys.Log),
		verifier.NoteKeyFingerprint(logKeys.Cosigner), verifier.KeyFingerprint(keys.Admin), `lang="nl"`} {
		if !strings.Contains(s, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	csp := regexp.MustCompile(`http-equiv="Content-Security-Policy" content="([^"]*)"`).FindStringSubmatch(s)
	if csp == nil {
		t.Fatal("the page has no Content-Security-Policy")
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'none'", "'wasm-unsafe-eval'"} {
		if !strings.Contains(csp[1], want) {
			t.Errorf("the policy lacks %s: %s", want, csp[1])
		}
	}
	scriptSrc := regexp.MustCompile(`script-src ([^;]*)`).FindStringSubmatch(csp[1])
	if scriptSrc == nil || strings.Contains(scriptSrc[1], "unsafe-inline") || strings.Contains(scriptSrc[1], "'unsafe-eval'") {
		t.Errorf("the policy lets other scripts run: %s", csp[1])
	}
	// Every script that runs is named by its hash, and only those.
	scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(s, -1)
	if len(scripts) != 2 {
		t.Fatalf("%d running scripts, want wasm_exec.js and the page's", len(scripts))
	}
	if scripts[0][1] != string(exec) {
		t.Errorf("the first script is not wasm_exec.js as given")
	}
	for _, sc := range scripts {
		sum := sha256.Sum256([]byte(sc[1]))
		if !strings.Contains(csp[1], "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
			t.Errorf("a script of the page is not in its policy")
		}
	}
	if n := strings.Count(csp[1], "'sha256-"); n != 2 {
		t.Errorf("the policy names %d scripts", n)
	}
	for _, bad := range []string{"http://", "https://", "src=", "<link", "fetch("} {
		if strings.Contains(s, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}

	for name, p := range map[string]Page{
		"no log key":         {Keys: Keys{Cosigner: keys.Cosigner, Admin: keys.Admin}, Wasm: wasm, WasmExecJS: exec},
		"an admin key":       {Keys: Keys{Log: keys.Log, Cosigner: keys.Cosigner, Admin: "not a key"}, Wasm: wasm, WasmExecJS: exec},
		"a broken admin key": {Keys: Keys{Log: keys.Log, Cosigner: keys.Cosigner, Admin: keys.Admin + "x"}, Wasm: wasm, WasmExecJS: exec},
		"not WebAssembly":    {Keys: keys, Wasm: []byte("MZ"), WasmExecJS: exec},
		"no wasm_exec.js":    {Keys: keys, Wasm: wasm},
		"a script that ends": {Keys: keys, Wasm: wasm, WasmExecJS: []byte("x = '</SCRIPT>'")},
	} {
		if _, err := RenderPage(p); err == nil {
			t.Errorf("%s: a page was rendered", name)
		}
	}
}

// TestCheckRefuses: Check never passes an empty, a broken or an unkeyed bundle, and says
// why in Dutch.
func TestCheckRefuses(t *testing.T) {
	keys := testKeys(t)
	for name, c := range map[string]struct {
		data []byte
		keys Keys
	}{
		"empty":       {nil, keys},
		"not JSON":    {[]byte("{"), keys},
		"no log keys": {[]byte("{}"), Keys{Admin: keys.Admin}},
		"no admin":    {[]byte("{}"), Keys{Log: keys.Log, Cosigner: keys.Cosigner}},
	} {
		v := Check(c.data, c.keys)
		if v.OK || v.Report != "" || len(v.Problems) == 0 {
			t.Errorf("%s: %+v", name, v)
			continue
		}
		for _, p := range v.Problems {
			if p.NL == "" || p.Detail == "" || strings.Contains(p.NL, "verifier:") {
				t.Errorf("%s: problem %+v", name, p)
			}
		}
	}
}
