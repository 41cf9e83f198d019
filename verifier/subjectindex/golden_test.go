package subjectindex

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.txt from the code")

const vectorsFile = "testdata/vectors.txt"

// goldenVectors computes every vector of testdata/vectors.txt: the key
// derivations from a real pseudonym, a list and its commitment, the root of
// a small map and a proof of each kind.
func goldenVectors(t *testing.T) [][2]string {
	t.Helper()
	var out [][2]string
	add := func(name string, b []byte) { out = append(out, [2]string{name, hex.EncodeToString(b)}) }

	key := events.SubjectKey{ID: "k1", Secret: bytes.Repeat([]byte{1}, events.SubjectKeySize)}
	subj, err := events.SubjectFor(key, events.IDTypeBSN, "999990019")
	if err != nil {
		t.Fatal(err)
	}
	ik, err := DeriveIndexKey(string(subj.IDType), subj.KeyID, subj.Pseudonym)
	if err != nil {
		t.Fatal(err)
	}
	add("pseudonym", []byte(subj.Pseudonym))
	add("index_key", ik[:])
	sk := testVRF(t)
	add("vrf_public_key", sk.PublicKey().Bytes())
	alpha, err := MapKeyInput(ik, "gemeente-a")
	if err != nil {
		t.Fatal(err)
	}
	add("vrf_input gemeente-a", alpha)
	mk, pi := proveMapKey(t, sk, ik, "gemeente-a")
	add("vrf_proof gemeente-a", pi)
	add("map_key gemeente-a", mk[:])

	l := &List{Items: []Item{{Leaf: 3}, {Leaf: 17, Erased: true, Tombstone: 40}, {Leaf: 41}}}
	copy(l.Nonce[:], bytes.Repeat([]byte{0xa5}, NonceSize))
	lb, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	add("list", lb)
	c, err := l.Commitment(mk)
	if err != nil {
		t.Fatal(err)
	}
	add("list_commitment", c[:])

	ls := append(testLeaves(4), Leaf{Key: mk, Value: c})
	root, err := RootOf(ls)
	if err != nil {
		t.Fatal(err)
	}
	add("root of 5 keys", root[:])
	pb, err := proveNaive(ls, mk).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	add("proof inclusion of map_key", pb)
	found := map[ProofKind]bool{}
	for j := uint64(0); len(found) < 2; j++ {
		k := testKey(100 + j)
		p := proveNaive(ls, k)
		if found[p.Kind] {
			continue
		}
		found[p.Kind] = true
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		add(fmt.Sprintf("absent key testKey(%d)", 100+j), k[:])
		add(fmt.Sprintf("proof kind %d of testKey(%d)", p.Kind, 100+j), b)
	}
	return out
}

func TestGoldenVectors(t *testing.T) {
	got := goldenVectors(t)
	var text strings.Builder
	for _, v := range got {
		fmt.Fprintf(&text, "%s: %s\n", v[0], v[1])
	}
	if *update {
		if err := os.WriteFile(vectorsFile, []byte(text.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != text.String() {
		t.Errorf("the vectors differ from %s (a format change needs a new version, not new vectors):\ngot:\n%s\nwant:\n%s", vectorsFile, text.String(), want)
	}
}

// goldenBytes returns the vectors of testdata/vectors.txt whose name
// starts with prefix, to seed the fuzz targets.
func goldenBytes(t testing.TB, prefix string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		name, h, _ := strings.Cut(line, ": ")
		if strings.HasPrefix(name, prefix) {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %q vectors in %s", prefix, vectorsFile)
	}
	return out
}

func FuzzParseProof(f *testing.F) {
	for _, b := range goldenBytes(f, "proof") {
		f.Add(b)
	}
	ls := testLeaves(5)
	root, _ := RootOf(ls)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedProof) {
				t.Fatalf("error does not wrap ErrMalformedProof: %v", err)
			}
			return
		}
		again, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a parsed proof does not marshal to its bytes: %v", err)
		}
		// Whatever parses, verifying it neither panics nor proves a
		// claim the naive prover contradicts.
		k := ls[2].Key
		if VerifyInclusion(root, k, ls[2].Value, p) == nil && p.Kind != Inclusion {
			t.Fatalf("a proof of kind %d verified inclusion", p.Kind)
		}
		if VerifyAbsence(root, k, p) == nil {
			t.Fatalf("a fuzzed proof shows a present key absent")
		}
	})
}

func FuzzVerifyMapKey(f *testing.F) {
	for _, b := range goldenBytes(f, "vrf_proof") {
		f.Add(b)
	}
	sk := testVRF(f)
	pub, err := ParseVRFPublicKey(sk.PublicKey().Bytes())
	if err != nil {
		f.Fatal(err)
	}
	var ik IndexKey
	copy(ik[:], goldenBytes(f, "index_key")[0])
	want := MapKey(goldenBytes(f, "map_key")[0])
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := pub.MapKey(ik, "gemeente-a", b)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("error does not wrap ErrKey: %v", err)
			}
			return
		}
		// Whatever proof verifies gives the one map key: a VRF has one
		// output per input.
		if got != want {
			t.Fatalf("a fuzzed proof verified with map key %x, want %x", got, want)
		}
	})
}

func FuzzParseList(f *testing.F) {
	for _, b := range goldenBytes(f, "list") {
		f.Add(b)
	}
	f.Add([]byte(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseList(b)
		if err != nil {
			if !errors.Is(err, ErrList) {
				t.Fatalf("error does not wrap ErrList: %v", err)
			}
			return
		}
		again, err := l.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a parsed list does not marshal to its bytes: %v", err)
		}
	})
}
