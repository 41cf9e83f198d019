//go:build js && wasm

// Command spoor-verify-wasm is the verifier of the parent's page (spoor
// verify-page), compiled to WebAssembly: it is verifier.VerifyBundle and
// report.WriteInzage, the code of spoor verify, run in the browser. The
// page hands it the bundle's bytes and the pinned keys; it hands back the
// verdict as JSON (verifypage.Verdict). It reads nothing else and opens no
// connection: the page's Content-Security-Policy would refuse one anyway.
package main

import (
	"encoding/json"
	"syscall/js"

	"github.com/spoor-ledger/spoor/verifier/verifypage"
)

func main() {
	// spoorVerify(bundle Uint8Array, logVkey, cosignerVkey, adminVkey
	// [, sealedProof, number]) returns a Promise of the verdict's JSON. With
	// the sealed proof's text and the child's number (issue 23) it also runs
	// the parent's own check (verifypage.CheckAboutChild). The check runs in a
	// goroutine of its own: a js.FuncOf callback that blocked would hold
	// the browser's event loop, and the page could not say it is busy.
	verify := js.FuncOf(func(this js.Value, args []js.Value) any {
		if (len(args) != 4 && len(args) != 6) || args[0].Type() != js.TypeObject {
			return js.ValueOf("spoorVerify(bundle Uint8Array, logVkey, cosignerVkey, adminVkey[, sealedProof, number])")
		}
		data := make([]byte, args[0].Get("length").Int())
		js.CopyBytesToGo(data, args[0])
		keys := verifypage.Keys{Log: args[1].String(), Cosigner: args[2].String(), Admin: args[3].String()}
		var sealed, number string
		if len(args) == 6 {
			sealed, number = args[4].String(), args[5].String()
		}
		var resolve js.Value
		executor := js.FuncOf(func(this js.Value, a []js.Value) any {
			resolve = a[0]
			return nil
		})
		promise := js.Global().Get("Promise").New(executor)
		executor.Release()
		go func() {
			v := verifypage.Check(data, keys)
			if sealed != "" || number != "" {
				v = verifypage.CheckAboutChild(data, keys, sealed, number)
			}
			out, err := json.Marshal(v)
			if err != nil {
				// A Verdict is strings, bools and slices of them: it
				// always marshals.
				out = []byte(`{"ok":false,"problems":[{"nl":"De controle liep vast.","detail":"verdict did not encode"}]}`)
			}
			resolve.Invoke(string(out))
		}()
		return promise
	})
	js.Global().Set("spoorVerify", verify)
	if ready := js.Global().Get("spoorReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	// The functions above live as long as the program: it waits here for
	// the page's calls.
	select {}
}
