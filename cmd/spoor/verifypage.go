package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/verifypage"
)

type verifyPageFlags struct {
	out      string
	vkey     string
	cosigner string
	admin    string
	wasm     string
	wasmExec string
	src      string
	goTool   string
	timeout  time.Duration
}

func newVerifyPageCmd() *cobra.Command {
	f := &verifyPageFlags{}
	cmd := &cobra.Command{
		Use:   "verify-page -o DIR --vkey KEY|@FILE --admin KEY|@FILE [--cosigner-vkey KEY|@FILE]",
		Short: "Write the parent's check: a page that verifies an inzage bundle in the browser, offline",
		Long: `spoor verify-page writes DIR/index.html: one page, for the covenant or the FG to
publish, on which a parent checks an inzage bundle in an ordinary browser. The
page holds the keys you pin here (--vkey, --cosigner-vkey, --admin: the ones the
covenant publishes) and the verifier of spoor verify compiled to WebAssembly, so
it gives the same verdict and shows the same Dutch report. It works when opened
from a file, with no server; its Content-Security-Policy allows no network
connection, and the bundle never leaves the browser.

The verifier is compiled with the Go tool (--go, default "go") from Spoor's
source (--src, default the current folder; it must be inside Spoor's module),
and wasm_exec.js comes from that Go. A release can compile it once and pass
--wasm FILE (GOOS=js GOARCH=wasm go build ./cmd/spoor-verify-wasm) with
--wasm-exec FILE (the same Go's lib/wasm/wasm_exec.js) instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerifyPage(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "out", "o", "", "the folder to write index.html to")
	fl.StringVar(&f.vkey, "vkey", "", "the log's verifier key to pin in the page (KEY or @FILE, e.g. @DIR/log.vkey)")
	fl.StringVar(&f.cosigner, "cosigner-vkey", "", "the log cosigner's verifier key to pin (KEY or @FILE); default: cosigner.vkey next to --vkey's file")
	fl.StringVar(&f.admin, "admin", "", "the covenant administrator's verifier key to pin (KEY or @FILE, e.g. @admin.pub)")
	fl.StringVar(&f.wasm, "wasm", "", "a verifier already compiled to WebAssembly (cmd/spoor-verify-wasm); default: compile it now")
	fl.StringVar(&f.wasmExec, "wasm-exec", "", "the wasm_exec.js of the Go that compiled --wasm; default: the one of --go")
	fl.StringVar(&f.src, "src", ".", "a folder inside Spoor's source, to compile the verifier from")
	fl.StringVar(&f.goTool, "go", "go", "the Go tool that compiles the verifier")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long compiling the verifier may take")
	return cmd
}

func runVerifyPage(cmd *cobra.Command, f *verifyPageFlags) error {
	out := cmd.OutOrStdout()
	if f.out == "" {
		return &exitError{2, errors.New("give the folder to write the page to: -o DIR")}
	}
	// The same pinning rules as spoor verify: the keys come from the
	// user, and the cosigner key may sit next to an @FILE log key.
	pinned := &verifyFlags{vkey: f.vkey, cosigner: f.cosigner}
	logKeys, err := pinnedLogKeys(pinned)
	if err != nil {
		return err
	}
	logV, cosV, err := pinnedLogKeyTexts(pinned)
	if err != nil {
		return err
	}
	if f.admin == "" {
		return &exitError{2, errors.New("refusing to write a page without a pinned administrator key: give --admin KEY|@FILE (the covenant administrator's admin.pub)")}
	}
	admin, err := readKeyArg(f.admin)
	if err != nil {
		return &exitError{2, fmt.Errorf("--admin: %w", err)}
	}
	if _, err := events.AdminPublicKey(admin); err != nil {
		return &exitError{2, fmt.Errorf("--admin %w", err)}
	}
	if f.wasm == "" && f.wasmExec != "" {
		return &exitError{2, errors.New("--wasm-exec goes with --wasm: the two must come from the same Go")}
	}

	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	var wasm, wasmExec []byte
	if f.wasm != "" {
		if wasm, err = os.ReadFile(f.wasm); err != nil {
			return &exitError{1, fmt.Errorf("--wasm: %w", err)}
		}
		if f.wasmExec != "" {
			wasmExec, err = os.ReadFile(f.wasmExec)
		} else {
			wasmExec, err = verifypage.WasmExecJS(ctx, f.goTool)
		}
		if err != nil {
			return &exitError{1, fmt.Errorf("wasm_exec.js: %w", err)}
		}
	} else {
		fmt.Fprintf(out, "compiling the verifier to WebAssembly (%s)...\n", verifypage.WasmPackage)
		if wasm, wasmExec, err = verifypage.BuildWasm(ctx, f.goTool, f.src); err != nil {
			return &exitError{1, fmt.Errorf("%w\n(run it inside Spoor's source, point --src there, or give a verifier compiled beforehand with --wasm and --wasm-exec)", err)}
		}
	}
	keys := verifypage.Keys{Log: logV, Cosigner: cosV, Admin: admin}
	path, err := verifypage.WritePage(f.out, verifypage.Page{Keys: keys, Wasm: wasm, WasmExecJS: wasmExec})
	if err != nil {
		return &exitError{1, err}
	}
	st, err := os.Stat(path)
	if err != nil {
		return &exitError{1, err}
	}
	fmt.Fprintf(out, "wrote %s (%d bytes)\n", path, st.Size())
	fmt.Fprintf(out, "  pinned log key:           %s\n", verifier.NoteKeyFingerprint(logKeys.Log))
	fmt.Fprintf(out, "  pinned cosigner key:      %s\n", verifier.NoteKeyFingerprint(logKeys.Cosigner))
	fmt.Fprintf(out, "  pinned administrator key: %s\n", verifier.KeyFingerprint(admin))
	fmt.Fprintf(out, "Publish it where parents find it; it works opened from a file, with no server.\n")
	return nil
}
