package verifier_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/verifier"
)

func TestTlogProofRoundTrip(t *testing.T) {
	p := &verifier.TlogProof{Extra: []byte("a leaf record"), Index: 73894,
		Proof:      [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)},
		Checkpoint: []byte("example.com/log\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n— example.com/log hI2DJw==\n")}
	b := p.Marshal()
	if !strings.HasPrefix(string(b), "c2sp.org/tlog-proof@v1\nextra YSBsZWFmIHJlY29yZA==\nindex 73894\nAQEB") {
		t.Fatalf("unexpected layout:\n%s", b)
	}
	q, err := verifier.ParseTlogProof(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Marshal(), b) {
		t.Fatalf("round trip changed the file:\n%s\n---\n%s", b, q.Marshal())
	}
	// Without extra data and without proof hashes (a tree of one leaf).
	p = &verifier.TlogProof{Index: 0, Checkpoint: p.Checkpoint}
	if q, err := verifier.ParseTlogProof(p.Marshal()); err != nil || q.Extra != nil || len(q.Proof) != 0 || q.Index != 0 {
		t.Fatalf("no extra, no proof: %+v, %v", q, err)
	}
}

func TestParseTlogProofRefuses(t *testing.T) {
	cp := "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— o x\n"
	hash := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
	for name, in := range map[string]string{
		"other header":     "c2sp.org/tlog-proof@v2\nindex 1\n\n" + cp,
		"no blank line":    "c2sp.org/tlog-proof@v1\nindex 1\n" + cp,
		"no checkpoint":    "c2sp.org/tlog-proof@v1\nindex 1\n\n",
		"no index":         "c2sp.org/tlog-proof@v1\nextra AA==\n\n" + cp,
		"leading zero":     "c2sp.org/tlog-proof@v1\nindex 01\n\n" + cp,
		"negative index":   "c2sp.org/tlog-proof@v1\nindex -1\n\n" + cp,
		"index too large":  "c2sp.org/tlog-proof@v1\nindex 9223372036854775808\n\n" + cp,
		"short hash":       "c2sp.org/tlog-proof@v1\nindex 1\nAQEB\n\n" + cp,
		"bad extra":        "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\n" + cp,
		"empty extra":      "c2sp.org/tlog-proof@v1\nextra \nindex 1\n\n" + cp,
		"two extras":       "c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 1\n\n" + cp,
		"64 proof hashes":  "c2sp.org/tlog-proof@v1\nindex 1\n" + strings.Repeat(hash, 64) + "\n" + cp,
		"oversized":        "c2sp.org/tlog-proof@v1\nindex 1\n\n" + strings.Repeat("x", 70000),
		"unpadded base64":  "c2sp.org/tlog-proof@v1\nindex 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\n\n" + cp,
		"carriage return":  "c2sp.org/tlog-proof@v1\nindex 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ\rEBAQE=\n\n" + cp,
		"space after hash": "c2sp.org/tlog-proof@v1\nindex 1\n" + strings.TrimSuffix(hash, "\n") + " \n\n" + cp,
	} {
		if _, err := verifier.ParseTlogProof([]byte(in)); !errors.Is(err, verifier.ErrTlogProof) {
			t.Errorf("%s: %v, want ErrTlogProof", name, err)
		}
	}
	if _, err := verifier.ParseTlogProof([]byte("c2sp.org/tlog-proof@v1\nindex 1\n" + strings.Repeat(hash, 63) + "\n" + cp)); err != nil {
		t.Errorf("63 proof hashes: %v", err)
	}
}

func FuzzParseTlogProof(f *testing.F) {
	f.Add([]byte("c2sp.org/tlog-proof@v1\nextra AA==\nindex 3\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n\no\n4\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— o x\n"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\nx"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := verifier.ParseTlogProof(data)
		if err != nil {
			if !errors.Is(err, verifier.ErrTlogProof) {
				t.Fatalf("error without ErrTlogProof: %v", err)
			}
			return
		}
		// What parses marshals back to what parses the same.
		q, err := verifier.ParseTlogProof(p.Marshal())
		if err != nil || q.Index != p.Index || len(q.Proof) != len(p.Proof) || !bytes.Equal(q.Extra, p.Extra) || !bytes.Equal(q.Checkpoint, p.Checkpoint) {
			t.Fatalf("re-parse differs: %+v %v", q, err)
		}
	})
}
