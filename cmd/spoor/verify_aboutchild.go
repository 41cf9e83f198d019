package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// maxSealedText bounds the sealed-proof file read before parsing.
const maxSealedText = 4 << 10

// readSealedProof reads a sealed proof in its text form (base64, as a bundle
// will carry it) from a file.
func readSealedProof(path string) (*aboutchild.SealedProof, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the sealed proof: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSealedText+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the sealed proof: %w", err)
	}
	if len(b) > maxSealedText {
		return nil, fmt.Errorf("%s is larger than a sealed proof", path)
	}
	var sp aboutchild.SealedProof
	if err := sp.UnmarshalText([]byte(strings.TrimSpace(string(b)))); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sp, nil
}
