//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

// main says how to build this command: it runs in a browser only.
func main() {
	fmt.Fprintln(os.Stderr, "spoor-verify-wasm runs in the browser: build it with GOOS=js GOARCH=wasm (spoor verify-page does)")
	os.Exit(2)
}
