package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// goldenIndexHead is the index head of the golden vectors: a fixed root and
// the VRF public key of verifier/subjectindex's vectors.
func goldenIndexHead(t testing.TB) *IndexHeadBody {
	t.Helper()
	root := subjectindex.Hash(sha256.Sum256([]byte("golden index root")))
	return NewIndexHeadBody("spoor.example/log", 913, root, vectorVRFKey(t), 400)
}

// vectorVRFKey reads the VRF public key of verifier/subjectindex's golden
// vectors.
func vectorVRFKey(t testing.TB) *subjectindex.VRFPublicKey {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("subjectindex", "testdata", "vectors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "vrf_public_key: "); ok {
			b, _ := hex.DecodeString(h)
			k, err := subjectindex.ParseVRFPublicKey(b)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
	t.Fatal("no vrf_public_key in the subject index's vectors")
	return nil
}

// TestGoldenIndexHead holds the index head entry's byte forms: the
// canonical body (testdata/indexhead/body.json) and the leaf record
// committing to it (testdata/indexhead/leafrecord.hex). -update rewrites
// them.
func TestGoldenIndexHead(t *testing.T) {
	h := goldenIndexHead(t)
	body, err := MarshalIndexHeadBody(h)
	if err != nil {
		t.Fatal(err)
	}
	rec := LeafRecord{Type: EntryIndexHead, BodyHash: sha256.Sum256(body), IntegratedAt: time.Date(2026, 12, 7, 14, 0, 0, 912_000_000, time.UTC), CovenantIndex: 0}
	recBytes, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "indexhead")
	files := map[string][]byte{"body.json": body, "leafrecord.hex": []byte(hex.EncodeToString(recBytes) + "\n")}
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestGoldenIndexHead ./verifier/ -args -update once)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code writes:\n got  %s\n want %s", name, got, want)
		}
	}
	back, err := ParseIndexHeadBody(body)
	if err != nil || back.TreeSize != 913 || back.RootHash() != h.RootHash() {
		t.Fatalf("the golden body does not parse back: %+v, %v", back, err)
	}
	if k, err := back.VRFPublicKey(); err != nil || !k.Equal(vectorVRFKey(t)) {
		t.Fatalf("the golden body's VRF key: %v", err)
	}
	r, err := ParseLeafRecord(recBytes)
	if err != nil || r.Type != EntryIndexHead || r.Type.String() != "index-head" || len(recBytes) != LeafRecordSize {
		t.Fatalf("the golden record: %+v, %v", r, err)
	}
	for name, bad := range map[string][]byte{
		"a space":          bytes.Replace(body, []byte(`{"format"`), []byte(`{ "format"`), 1),
		"upper-case root":  bytes.Replace(body, []byte(h.Root), []byte(strings.ToUpper(h.Root)), 1),
		"another format":   bytes.Replace(body, []byte(IndexHeadFormat), []byte("spoor.index-head/v2"), 1),
		"an unknown field": bytes.Replace(body, []byte(`}`), []byte(`,"keys":3}`), 1),
		"not a point":      bytes.Replace(body, []byte(h.VRFKey), []byte(strings.Repeat("ff", 32)), 1),
	} {
		if _, err := ParseIndexHeadBody(bad); !errors.Is(err, ErrIndexHead) {
			t.Errorf("a body with %s: %v, want ErrIndexHead", name, err)
		}
	}
}

func FuzzParseIndexHeadBody(f *testing.F) {
	body, _ := MarshalIndexHeadBody(goldenIndexHead(f))
	f.Add(body)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseIndexHeadBody(b)
		if err != nil {
			if !errors.Is(err, ErrIndexHead) {
				t.Fatalf("error does not wrap ErrIndexHead: %v", err)
			}
			return
		}
		again, err := MarshalIndexHeadBody(h)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a parsed body does not marshal back to itself: %v", err)
		}
	})
}
