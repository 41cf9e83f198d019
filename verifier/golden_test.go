package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// update rewrites the golden files in testdata. The keys come from fixed
// seeds, so they come out the same; the checkpoint's cosignature carries the
// time of signing, so the checkpoint changes.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenOrigin is the origin of the golden test log.
const goldenOrigin = "spoor.example/test-log"

// goldenRecords are the leaf records of the golden test log, in leaf order:
// covenant version 1 at leaf 0 (naming itself), a disclosure checked against
// it, and a tombstone erasing the disclosure.
var goldenRecords = []struct {
	file string
	rec  LeafRecord
}{
	{"leafrecord_covenant.hex", LeafRecord{
		Type:          EntryCovenant,
		BodyHash:      sha256.Sum256([]byte("covenant version 1")),
		IntegratedAt:  time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
		CovenantIndex: 0,
	}},
	{"leafrecord_disclosure.hex", LeafRecord{
		Type:          EntryDisclosure,
		BodyHash:      sha256.Sum256([]byte("a canonical envelope")),
		IntegratedAt:  time.Date(2026, 1, 5, 9, 0, 1, 234_000_000, time.UTC),
		CovenantIndex: 0,
	}},
	{"leafrecord_tombstone.hex", LeafRecord{
		Type:          EntryTombstone,
		BodyHash:      sha256.Sum256([]byte("a tombstone body")),
		IntegratedAt:  time.Date(2028, 1, 5, 0, 0, 0, 1_000_000, time.UTC),
		CovenantIndex: 0,
		ErasedIndex:   1,
		RuleID:        "retention:zorg.basis_2y",
	}},
}

// goldenSeed derives a fixed Ed25519 seed for a test key.
func goldenSeed(label string) []byte {
	s := sha256.Sum256([]byte("spoor verifier golden test key: " + label))
	return s[:]
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reading golden file: %v", err)
	}
	return b
}

func readGoldenHex(t testing.TB, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(string(readGolden(t, name))))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// goldenKeys returns the pinned keys of the golden test log.
func goldenKeys(t testing.TB) *LogKeys {
	t.Helper()
	keys, err := ParseLogKeys(string(readGolden(t, "log.vkey")), string(readGolden(t, "cosigner.vkey")))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func writeGolden(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateGoldens rewrites testdata when run with -update.
func TestUpdateGoldens(t *testing.T) {
	if !*update {
		return
	}
	var tree = testonly.New(rfc6962.DefaultHasher)
	for _, g := range goldenRecords {
		b, err := g.rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		writeGolden(t, g.file, []byte(hex.EncodeToString(b)+"\n"))
		tree.AppendData(b)
	}
	logSkey, logVkey := encodeKeyPair(goldenOrigin, algEd25519, goldenSeed("log"))
	cosSkey, cosVkey := encodeKeyPair(goldenOrigin+CosignerSuffix, algCosignatureV1, goldenSeed("cosigner"))
	writeGolden(t, "log.skey", []byte(logSkey+"\n"))
	writeGolden(t, "log.vkey", []byte(logVkey+"\n"))
	writeGolden(t, "cosigner.skey", []byte(cosSkey+"\n"))
	writeGolden(t, "cosigner.vkey", []byte(cosVkey+"\n"))
	s, err := NewCheckpointSigner(logSkey, cosSkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := s.Sign(goldenOrigin, tree.Size(), [32]byte(tree.Hash()))
	if err != nil {
		t.Fatal(err)
	}
	writeGolden(t, "checkpoint", cp)
}

// TestGoldenKeys checks that the key files are the ones the fixed seeds
// give, in the encodings x/mod and the formats library read.
func TestGoldenKeys(t *testing.T) {
	logSkey, logVkey := encodeKeyPair(goldenOrigin, algEd25519, goldenSeed("log"))
	cosSkey, cosVkey := encodeKeyPair(goldenOrigin+CosignerSuffix, algCosignatureV1, goldenSeed("cosigner"))
	for name, want := range map[string]string{
		"log.skey": logSkey, "log.vkey": logVkey, "cosigner.skey": cosSkey, "cosigner.vkey": cosVkey,
	} {
		if got := strings.TrimSpace(string(readGolden(t, name))); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got, want := KeyFingerprint(logVkey), goldenOrigin+"+"+strings.Split(logVkey, "+")[1]; got != want {
		t.Errorf("KeyFingerprint = %q, want %q", got, want)
	}
}

// TestGoldenLeafRecords checks each golden record both ways.
func TestGoldenLeafRecords(t *testing.T) {
	for _, g := range goldenRecords {
		want := readGoldenHex(t, g.file)
		got, err := g.rec.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: MarshalBinary = %x, want %x", g.file, got, want)
		}
		r, err := ParseLeafRecord(want)
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if !leafRecordsEqual(r, &g.rec) {
			t.Errorf("%s: ParseLeafRecord = %+v, want %+v", g.file, r, g.rec)
		}
	}
}

// TestGoldenCheckpoint opens the stored checkpoint with the stored vkeys,
// checks that it commits to the golden leaf records, and that its log
// signature is what the fixed log key makes today (Ed25519 is
// deterministic).
func TestGoldenCheckpoint(t *testing.T) {
	b := readGolden(t, "checkpoint")
	cp, err := OpenCheckpoint(b, goldenKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != goldenOrigin || cp.Size != uint64(len(goldenRecords)) {
		t.Fatalf("checkpoint is %q size %d", cp.Origin, cp.Size)
	}
	if cp.CosignedAt.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || cp.CosignedAt.Nanosecond() != 0 {
		t.Errorf("CosignedAt = %v, want whole seconds after 2026", cp.CosignedAt)
	}
	if !bytes.Equal(cp.Note, b) {
		t.Error("Note is not the bytes opened")
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	for _, g := range goldenRecords {
		tree.AppendData(readGoldenHex(t, g.file))
	}
	if [32]byte(tree.Hash()) != cp.Hash {
		t.Fatalf("checkpoint root %x, tree of golden records %x", cp.Hash, tree.Hash())
	}
	for i, g := range goldenRecords {
		p, err := tree.InclusionProof(uint64(i), tree.Size())
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(uint64(i), cp.Size, LeafHash(readGoldenHex(t, g.file)), p, cp.Hash); err != nil {
			t.Errorf("%s: %v", g.file, err)
		}
	}

	s, err := NewCheckpointSigner(string(readGolden(t, "log.skey")), string(readGolden(t, "cosigner.skey")))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := s.Sign(cp.Origin, cp.Size, cp.Hash)
	if err != nil {
		t.Fatal(err)
	}
	body, sigs := splitNote(t, b)
	freshBody, freshSigs := splitNote(t, fresh)
	if body != freshBody || sigs[0] != freshSigs[0] {
		t.Errorf("re-signing gives another body or log signature:\n%s\n%s", b, fresh)
	}
}

// splitNote returns a signed note's text and its signature lines.
func splitNote(t testing.TB, b []byte) (string, []string) {
	t.Helper()
	text, sigs, ok := strings.Cut(string(b), "\n\n")
	if !ok {
		t.Fatalf("not a signed note: %q", b)
	}
	return text + "\n", strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
}

func leafRecordsEqual(a, b *LeafRecord) bool {
	return a.Type == b.Type && a.BodyHash == b.BodyHash && a.IntegratedAt.Equal(b.IntegratedAt) &&
		a.CovenantIndex == b.CovenantIndex && a.ErasedIndex == b.ErasedIndex && a.RuleID == b.RuleID
}
