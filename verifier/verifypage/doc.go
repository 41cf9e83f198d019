// Package verifypage is the parent's check in the browser (issue 26): the
// static page that spoor verify-page writes, and the verdict the
// WebAssembly verifier (cmd/spoor-verify-wasm) hands back to it.
//
// Data flows like this. The covenant (or the FG) runs spoor verify-page
// with the keys it publishes; WritePage lays out one HTML file holding
// those pinned keys, Go's wasm_exec.js and the verifier compiled to
// WebAssembly (gzipped, base64, inline: a page opened from file:// may not
// fetch anything, and its Content-Security-Policy forbids every
// connection). The parent opens the page, picks the bundle file; the page
// hands its bytes and the pinned keys to Check, which is
// verifier.VerifyBundle and report.WriteInzage, the very code of spoor
// verify, so the verdict and the Dutch report are the same as the desk's.
// Nothing leaves the browser.
package verifypage
