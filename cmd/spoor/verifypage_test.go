package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/verifier"
)

// pageWasm returns the verifier a page carries, unpacked.
func pageWasm(t *testing.T, page []byte) []byte {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/octet-stream" id="spoor-wasm">(.*?)</script>`).FindSubmatch(page)
	if m == nil {
		t.Fatal("the page carries no verifier")
	}
	packed, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Fatalf("the verifier is not base64: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		t.Fatalf("the verifier is not gzipped: %v", err)
	}
	wasm, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestVerifyPageCommand: spoor verify-page writes the page with the keys
// pinned as spoor verify pins them (the cosigner key next to an @FILE log
// key), the verifier it is given or compiles, and refuses to write one
// without every key. The page in a browser is TestVerifyPageInBrowser's
// (verifier/verifypage_test.go).
func TestVerifyPageCommand(t *testing.T) {
	keyDir := datadir.Dir(t.TempDir())
	_, logV, _, cosV, err := verifier.GenerateLogKeys("spoor.example/regio-amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	_, adminV, err := events.GenerateAdminKey("regio-amersfoort.convenantbeheer")
	if err != nil {
		t.Fatal(err)
	}
	logFile, adminFile := keyDir.LogVkey(), filepath.Join(string(keyDir), "admin.pub")
	for path, key := range map[string]string{logFile: logV, keyDir.CosignerVkey(): cosV, adminFile: adminV} {
		if err := os.WriteFile(path, []byte(key+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stub := append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{0}, 64)...)
	stubFile := filepath.Join(t.TempDir(), "verify.wasm")
	if err := os.WriteFile(stubFile, stub, 0o644); err != nil {
		t.Fatal(err)
	}
	logKeys, err := verifier.ParseLogKeys(logV, cosV)
	if err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	stdout, stderr, code := runSpoor(t, "verify-page", "-o", out, "--vkey", "@"+logFile, "--admin", "@"+adminFile, "--wasm", stubFile)
	if code != 0 {
		t.Fatalf("verify-page exited %d:\n%s%s", code, stdout, stderr)
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{logV, cosV, adminV, "connect-src 'none'", "globalThis.Go"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, want := range []string{verifier.NoteKeyFingerprint(logKeys.Log), verifier.NoteKeyFingerprint(logKeys.Cosigner), verifier.KeyFingerprint(adminV)} {
		if !strings.Contains(stdout, want) || !bytes.Contains(page, []byte(want)) {
			t.Errorf("the output or the page lacks the fingerprint %s:\n%s", want, stdout)
		}
	}
	if !bytes.Equal(pageWasm(t, page), stub) {
		t.Errorf("the page does not carry the verifier given with --wasm")
	}

	t.Run("refuses without every key", func(t *testing.T) {
		for _, args := range [][]string{
			{"--vkey", "@" + logFile, "--admin", "@" + adminFile, "--wasm", stubFile},                 // no -o
			{"-o", out, "--admin", "@" + adminFile, "--wasm", stubFile},                               // no log key
			{"-o", out, "--vkey", logV, "--admin", "@" + adminFile, "--wasm", stubFile},               // no cosigner key beside it
			{"-o", out, "--vkey", "@" + logFile, "--wasm", stubFile},                                  // no administrator key
			{"-o", out, "--vkey", "@" + logFile, "--admin", logV + "x", "--wasm", stubFile},           // not a key
			{"-o", out, "--vkey", "@" + logFile, "--admin", "@" + adminFile, "--wasm-exec", stubFile}, // wasm_exec.js without its wasm
		} {
			_, stderr, code := runSpoor(t, append([]string{"verify-page"}, args...)...)
			if code != 2 || !strings.Contains(stderr, "-o") && !strings.Contains(stderr, "--") {
				t.Errorf("%v: exit %d, %s", args, code, stderr)
			}
		}
	})

	t.Run("compiles the verifier", func(t *testing.T) {
		if testing.Short() {
			t.Skip("compiles the verifier to WebAssembly: not with -short")
		}
		out := t.TempDir()
		stdout, stderr, code := runSpoor(t, "verify-page", "-o", out, "--vkey", "@"+logFile, "--admin", "@"+adminFile, "--go", filepath.Join(runtime.GOROOT(), "bin", "go"))
		if code != 0 {
			t.Fatalf("verify-page exited %d:\n%s%s", code, stdout, stderr)
		}
		page, err := os.ReadFile(filepath.Join(out, "index.html"))
		if err != nil {
			t.Fatal(err)
		}
		if wasm := pageWasm(t, page); !bytes.HasPrefix(wasm, []byte("\x00asm")) || len(wasm) < 1<<20 {
			t.Errorf("the page carries %d bytes that are not the compiled verifier", len(wasm))
		}
	})
}
