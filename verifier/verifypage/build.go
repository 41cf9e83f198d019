//go:build !js

package verifypage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WasmPackage is the verifier the page runs, as a Go package path.
const WasmPackage = "github.com/spoor-ledger/spoor/cmd/spoor-verify-wasm"

// BuildWasm compiles the verifier (WasmPackage) to WebAssembly with the Go
// tool goTool ("go" when empty), in srcDir (a folder of Spoor's module,
// whose code it compiles), and returns the module's bytes and the
// wasm_exec.js of the same Go: the two must come from one toolchain.
// Symbols and file paths are left out (-trimpath, -s -w): the page is
// smaller and names no folder of the machine that built it.
func BuildWasm(ctx context.Context, goTool, srcDir string) (wasm, wasmExecJS []byte, err error) {
	if goTool == "" {
		goTool = "go"
	}
	tmp, err := os.MkdirTemp("", "spoor-verify-wasm-")
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't make a folder to build in: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "verify.wasm")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", out, WasmPackage)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("couldn't compile the verifier to WebAssembly (%s build %s in %s): %w\n%s", goTool, WasmPackage, srcDir, err, msg)
	}
	wasm, err = os.ReadFile(out)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read the compiled verifier: %w", err)
	}
	wasmExecJS, err = WasmExecJS(ctx, goTool)
	if err != nil {
		return nil, nil, err
	}
	return wasm, wasmExecJS, nil
}

// WasmExecJS reads the wasm_exec.js of the Go tool goTool: in
// $(go env GOROOT)/lib/wasm since Go 1.24, in misc/wasm before.
func WasmExecJS(ctx context.Context, goTool string) ([]byte, error) {
	if goTool == "" {
		goTool = "go"
	}
	root, err := exec.CommandContext(ctx, goTool, "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("couldn't ask %s for its GOROOT: %w", goTool, err)
	}
	goroot := strings.TrimSpace(string(root))
	for _, dir := range []string{"lib/wasm", "misc/wasm"} {
		b, err := os.ReadFile(filepath.Join(goroot, dir, "wasm_exec.js"))
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("couldn't read wasm_exec.js: %w", err)
		}
	}
	return nil, fmt.Errorf("there is no wasm_exec.js under %s (lib/wasm or misc/wasm)", goroot)
}
