package aboutchild

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata")

// testParams are the cheapest parameters a sealed proof may have (256 MiB,
// one pass), so that the tests spend about half a second per derivation.
var testParams = Params{MemoryKiB: MinMemoryKiB, Time: 1, Threads: 2}

// goldenSealed is testdata/sealed-v1.json: everything another implementation
// needs to reproduce a sealed proof byte for byte.
type goldenSealed struct {
	Comment    string   `json:"comment"`
	SecretKeys []string `json:"vrf_secret_keys"`
	PublicKeys []string `json:"vrf_public_keys"`
	IDType     string   `json:"id_type"`
	Number     string   `json:"number"`
	Input      string   `json:"vrf_input_hex"`
	Proofs     []string `json:"proofs"`
	Outputs    []string `json:"outputs"`
	Salt       string   `json:"salt"`
	MemoryKiB  uint32   `json:"memory_kib"`
	Time       uint8    `json:"time"`
	Threads    uint8    `json:"threads"`
	AEADKey    string   `json:"aead_key"`
	Sealed     string   `json:"sealed_base64"`
}

func TestGoldenSealed(t *testing.T) {
	path := filepath.Join("testdata", "sealed-v1.json")
	var g goldenSealed
	if *update {
		g = goldenSealed{
			Comment: "A sealed VRF proof (verifier/aboutchild/sealed.go) for the synthetic BSN 999990019 under two VRF keys. " +
				"All values are test values, published on purpose. Hex is lower case; salt is hex; sealed_base64 is standard padded base64.",
			SecretKeys: []string{strings.Repeat("01", 31) + "00", strings.Repeat("02", 31) + "00"},
			IDType:     IDTypeBSN, Number: "999990019",
			Salt:      strings.Repeat("5a", 32),
			MemoryKiB: testParams.MemoryKiB, Time: testParams.Time, Threads: testParams.Threads,
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
	}
	var proofs []KeyProof
	var pubs, prfs, outs []string
	for _, s := range g.SecretKeys {
		sk, err := ParseSecretKey(mustHex(t, s))
		if err != nil {
			t.Fatal(err)
		}
		p, o, err := sk.Prove(g.IDType, g.Number)
		if err != nil {
			t.Fatal(err)
		}
		proofs = append(proofs, KeyProof{Key: sk.Public(), Proof: p})
		pubs = append(pubs, sk.Public().String())
		prfs = append(prfs, hex.EncodeToString(p))
		outs = append(outs, hex.EncodeToString(o))
	}
	in, _ := Input(g.IDType, g.Number)
	params := Params{MemoryKiB: g.MemoryKiB, Time: g.Time, Threads: g.Threads}
	sp, err := Seal(bytes.NewReader(mustHex(t, g.Salt)), g.IDType, g.Number, params, proofs)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := sp.MarshalText()
	if *update {
		g.PublicKeys, g.Proofs, g.Outputs, g.Input, g.Sealed = pubs, prfs, outs, hex.EncodeToString(in), string(text)
		g.AEADKey = hex.EncodeToString(sp.testKey(g.Number))
		b, _ := json.MarshalIndent(g, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	switch {
	case hex.EncodeToString(in) != g.Input:
		t.Errorf("VRF input %x, golden %s", in, g.Input)
	case strings.Join(pubs, ",") != strings.Join(g.PublicKeys, ","):
		t.Errorf("public keys %v, golden %v", pubs, g.PublicKeys)
	case strings.Join(prfs, ",") != strings.Join(g.Proofs, ","):
		t.Errorf("proofs differ from the golden ones")
	case strings.Join(outs, ",") != strings.Join(g.Outputs, ","):
		t.Errorf("outputs differ from the golden ones")
	case string(text) != g.Sealed:
		t.Errorf("sealed proof differs from the golden one:\n got %s\nwant %s", text, g.Sealed)
	}
	// And the golden bytes open to the golden outputs.
	var parsed SealedProof
	if err := parsed.UnmarshalText([]byte(g.Sealed)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parsed.Marshal(), sp.Marshal()) {
		t.Fatal("parse and marshal do not round-trip")
	}
	got, err := parsed.Outputs(g.IDType, g.Number)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range got {
		if hex.EncodeToString(o.Output) != g.Outputs[i] || o.Key.String() != g.PublicKeys[i] {
			t.Errorf("output %d: %x under %s", i, o.Output, o.Key)
		}
	}
}

// TestWrongNumberRevealsNothing: every wrong number that passes the elfproef
// (another child's, a neighbour's, the right one under the other identifier
// type) is refused with the one error, word for word.
func TestWrongNumberRevealsNothing(t *testing.T) {
	sk := GenerateKey()
	p, _, err := sk.Prove(IDTypeBSN, "999990019")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := Seal(nil, IDTypeBSN, "999990019", testParams, []KeyProof{{Key: sk.Public(), Proof: p}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ idType, number string }{
		{IDTypeBSN, "999990032"},             // another child
		{IDTypeBSN, "999990007"},             // another, near the first
		{IDTypeOnderwijsnummer, "101000000"}, // the wrong type
	} {
		_, err := sp.Outputs(c.idType, c.number)
		if err != ErrNotThisChild {
			t.Fatalf("%s %s: err = %v, want exactly ErrNotThisChild", c.idType, c.number, err)
		}
	}
	// A typing error is told as such, and never as "not this child".
	if _, err := sp.Outputs(IDTypeBSN, "999990018"); !errors.Is(err, ErrInvalidNumber) || strings.Contains(err.Error(), "999990018") {
		t.Fatalf("elfproef failure: err = %v", err)
	}
	// The right number opens it.
	outs, err := sp.Outputs(IDTypeBSN, "999990019")
	if err != nil || len(outs) != 1 {
		t.Fatalf("right number: %v", err)
	}
}

// TestTamperedSealedProof: any change to the header (the parameters, the
// salt, a key) or the ciphertext makes the right number fail, as a wrong one.
func TestTamperedSealedProof(t *testing.T) {
	sk, sk2 := GenerateKey(), GenerateKey()
	p, _, _ := sk.Prove(IDTypeBSN, "999990019")
	sp, err := Seal(nil, IDTypeBSN, "999990019", testParams, []KeyProof{{Key: sk.Public(), Proof: p}})
	if err != nil {
		t.Fatal(err)
	}
	b := sp.Marshal()
	flip := func(i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	// The salt, a key swapped for another valid key, the tag.
	swapped := bytes.Clone(b)
	copy(swapped[headerSize:], sk2.Public().Bytes())
	for name, c := range map[string][]byte{"salt": flip(20), "key": swapped, "tag": flip(len(b) - 1)} {
		sp2, err := ParseSealedProof(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := sp2.Outputs(IDTypeBSN, "999990019"); err != ErrNotThisChild {
			t.Fatalf("%s changed: err = %v, want ErrNotThisChild", name, err)
		}
	}
	// A proof that opens but is for another child: Seal refuses to make it.
	p2, _, _ := sk.Prove(IDTypeBSN, "999990032")
	if _, err := Seal(nil, IDTypeBSN, "999990019", testParams, []KeyProof{{Key: sk.Public(), Proof: p2}}); !errors.Is(err, ErrBadProof) {
		t.Fatalf("Seal of another child's proof: err = %v", err)
	}
}

func TestParseSealedRefuses(t *testing.T) {
	sk := GenerateKey()
	p, _, _ := sk.Prove(IDTypeBSN, "999990019")
	sp := &SealedProof{IDType: IDTypeBSN, Params: testParams, Keys: []*PublicKey{sk.Public()}, Ciphertext: make([]byte, ProofSize+tagSize)}
	_ = p
	good := sp.Marshal()
	if _, err := ParseSealedProof(good); err != nil {
		t.Fatalf("good form refused: %v", err)
	}
	set := func(i int, v ...byte) []byte { c := bytes.Clone(good); copy(c[i:], v); return c }
	cases := map[string][]byte{
		"empty":           nil,
		"short":           good[:headerSize-1],
		"magic":           set(0, 'X'),
		"version":         set(8, 2),
		"id type":         set(9, 3),
		"memory too low":  set(10, 0, 3, 0xff, 0xff),
		"memory too high": set(10, 0, 0x10, 0, 1),
		"time 0":          set(14, 0),
		"time 17":         set(14, 17),
		"threads 0":       set(15, 0),
		"threads 9":       set(15, 9),
		"no keys":         set(48, 0),
		"17 keys":         set(48, 17),
		"two keys, one":   set(48, 2),
		"bad key":         set(headerSize, bytes.Repeat([]byte{0xff}, 32)...),
		"trailing":        append(bytes.Clone(good), 0),
		"truncated":       good[:len(good)-1],
	}
	for name, b := range cases {
		if _, err := ParseSealedProof(b); !errors.Is(err, ErrMalformedSealed) {
			t.Errorf("%s: err = %v, want ErrMalformedSealed", name, err)
		}
	}
	// A key listed twice.
	sp.Keys = []*PublicKey{sk.Public(), sk.Public()}
	sp.Ciphertext = make([]byte, 2*ProofSize+tagSize)
	if _, err := ParseSealedProof(sp.Marshal()); !errors.Is(err, ErrMalformedSealed) {
		t.Errorf("duplicate key: err = %v", err)
	}
	// The text form: one spelling only.
	text := base64.StdEncoding.EncodeToString(good)
	for name, s := range map[string]string{
		"line break": text[:10] + "\n" + text[10:],
		"url-safe":   strings.NewReplacer("+", "-", "/", "_").Replace(text) + "",
		"unpadded":   strings.TrimRight(text, "="),
		"too long":   strings.Repeat("A", base64.StdEncoding.EncodedLen(MaxSealedSize)+4),
	} {
		if s == text {
			continue
		}
		var x SealedProof
		if err := x.UnmarshalText([]byte(s)); !errors.Is(err, ErrMalformedSealed) {
			t.Errorf("text %s: err = %v", name, err)
		}
	}
}

func FuzzParseSealedProof(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "sealed-v1.json")); err == nil {
		var g goldenSealed
		if json.Unmarshal(b, &g) == nil {
			if raw, err := base64.StdEncoding.DecodeString(g.Sealed); err == nil {
				f.Add(raw)
			}
		}
	}
	f.Add([]byte(sealedMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		sp, err := ParseSealedProof(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedSealed) {
				t.Fatalf("error without ErrMalformedSealed: %v", err)
			}
			return
		}
		// One byte form: what parses marshals back to the same bytes.
		if !bytes.Equal(sp.Marshal(), b) {
			t.Fatalf("parse then marshal changed the bytes")
		}
		text, _ := sp.MarshalText()
		var again SealedProof
		if err := again.UnmarshalText(text); err != nil || !bytes.Equal(again.Marshal(), b) {
			t.Fatalf("text form does not round-trip: %v", err)
		}
	})
}
