//go:build !js

package verifypage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/verifier"
)

// PageFile is the name of the page WritePage writes in its folder.
const PageFile = "index.html"

//go:embed page.html.tmpl
var pageTemplateText string

//go:embed page.js
var pageJS string

// The page is laid out with text/template: every value is made safe for
// its place in Go below (keys as JSON, which escapes <, > and &; the
// fingerprints HTML-escaped; scripts checked to hold no "</script"), so
// that the inline scripts are byte for byte what their CSP hashes name.
var pageTemplate = template.Must(template.New("page").Parse(pageTemplateText))

// Page is what WritePage needs: the pinned keys the page carries, the
// verifier compiled to WebAssembly (cmd/spoor-verify-wasm, see BuildWasm)
// and the wasm_exec.js of the Go that compiled it (WasmExecJS).
type Page struct {
	Keys       Keys
	Wasm       []byte
	WasmExecJS []byte
}

// WritePage checks the keys and writes the page to dir/index.html, and
// returns its path. The page works from file:// with no server: the
// verifier is inline (gzipped and base64), and its Content-Security-Policy
// allows no connection, no image, frame or other source, and only its own
// two scripts (by SHA-256) and WebAssembly.
func WritePage(dir string, p Page) (string, error) {
	page, err := RenderPage(p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("couldn't make the page's folder: %w", err)
	}
	path := filepath.Join(dir, PageFile)
	// A page that is published: readable by all, written whole or not at
	// all.
	if err := durable.WriteFile(path, page, 0o644); err != nil {
		return "", fmt.Errorf("couldn't write the page: %w", err)
	}
	return path, nil
}

// RenderPage returns the page WritePage writes.
func RenderPage(p Page) ([]byte, error) {
	logKeys, err := verifier.ParseLogKeys(p.Keys.Log, p.Keys.Cosigner)
	if err != nil {
		return nil, fmt.Errorf("the page's log keys: %w", err)
	}
	if _, err := events.AdminPublicKey(p.Keys.Admin); err != nil {
		return nil, fmt.Errorf("the page's administrator key %w", err)
	}
	if !bytes.HasPrefix(p.Wasm, []byte("\x00asm")) {
		return nil, errors.New("the verifier is not a WebAssembly module")
	}
	if len(p.WasmExecJS) == 0 {
		return nil, errors.New("the page needs Go's wasm_exec.js")
	}
	exec := string(p.WasmExecJS)
	for _, s := range []string{exec, pageJS} {
		if strings.Contains(strings.ToLower(s), "</script") {
			return nil, errors.New("a script of the page holds </script")
		}
	}
	var packed bytes.Buffer
	zw, err := gzip.NewWriterLevel(&packed, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("couldn't pack the verifier: %w", err)
	}
	if _, err := zw.Write(p.Wasm); err != nil {
		return nil, fmt.Errorf("couldn't pack the verifier: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("couldn't pack the verifier: %w", err)
	}
	keysJSON, err := json.Marshal(Keys{Log: strings.TrimSpace(p.Keys.Log), Cosigner: strings.TrimSpace(p.Keys.Cosigner), Admin: strings.TrimSpace(p.Keys.Admin)})
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the keys: %w", err)
	}
	view := struct {
		CSP, LogKey, CosignerKey, AdminKey, KeysJSON, WasmBase64, WasmExec, PageJS string
	}{
		CSP:         ContentSecurityPolicy(exec, pageJS),
		LogKey:      template.HTMLEscapeString(verifier.NoteKeyFingerprint(logKeys.Log)),
		CosignerKey: template.HTMLEscapeString(verifier.NoteKeyFingerprint(logKeys.Cosigner)),
		AdminKey:    template.HTMLEscapeString(verifier.KeyFingerprint(strings.TrimSpace(p.Keys.Admin))),
		KeysJSON:    string(keysJSON),
		WasmBase64:  base64.StdEncoding.EncodeToString(packed.Bytes()),
		WasmExec:    exec,
		PageJS:      pageJS,
	}
	var out bytes.Buffer
	if err := pageTemplate.Execute(&out, view); err != nil {
		return nil, fmt.Errorf("couldn't lay out the page: %w", err)
	}
	return out.Bytes(), nil
}

// ContentSecurityPolicy is the page's policy for the given inline
// scripts: nothing may be loaded or connected to (default-src and
// connect-src 'none'), only these scripts run (by their SHA-256) and
// WebAssembly may be compiled from bytes ('wasm-unsafe-eval'); inline
// styles are allowed, for the page's own and the report's. The report is
// shown in a srcdoc frame, which inherits this policy (and is sandboxed:
// no script runs in it).
func ContentSecurityPolicy(scripts ...string) string {
	src := []string{"'wasm-unsafe-eval'"}
	for _, s := range scripts {
		sum := sha256.Sum256([]byte(s))
		src = append(src, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return "default-src 'none'; connect-src 'none'; script-src " + strings.Join(src, " ") +
		"; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
}
