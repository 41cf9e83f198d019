package aboutchild

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpecVector runs the test vector of c2sp.org/vrf-r255 (the "Test vector"
// section of vrf-r255.md in C2SP/C2SP) through this package's wrapper.
func TestSpecVector(t *testing.T) {
	sk := mustHex(t, "3431c2b03533e280b23232e280b34e2c3132c2b03238e280b23131e280b34500")
	pk := mustHex(t, "54136cd90d99fbd1d4e855d9556efea87ba0337f2a6ce22028d0f5726fcb854e")
	alpha := mustHex(t, "633273702e6f72672f7672662d72323535") // "c2sp.org/vrf-r255"
	pi := mustHex(t, "0a97d961262fb549b4175c5117860f42ae44a123f93c476c439eddd1c0cff926"+
		"5c805525233e2284dbed45e593b8eea31d5ca9734d72bcbba9738d5237f955f3"+
		"b2422351149d1312503b6441a47c940c")
	beta := mustHex(t, "dd653f0879b48c3ef69e13551239bec4cbcc1c18fe8894de2e9e1c790e182736"+
		"03bf1c6c25d7a797aeff3c43fd32b974d3fcbd4bcce916007097922a3ea3a794")

	secret, err := ParseSecretKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret.Public().Bytes(), pk) {
		t.Fatalf("public key %x, want %x", secret.Public().Bytes(), pk)
	}
	proof, output := secret.ProveInput(alpha)
	if !bytes.Equal(proof, pi) {
		t.Fatalf("proof %x, want %x", proof, pi)
	}
	if !bytes.Equal(output, beta) {
		t.Fatalf("output %x, want %x", output, beta)
	}
	public, err := ParsePublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := public.VerifyInput(alpha, pi)
	if err != nil || !bytes.Equal(got, beta) {
		t.Fatalf("VerifyInput = %x, %v; want %x", got, err, beta)
	}
	for i := range pi {
		bad := bytes.Clone(pi)
		bad[i] ^= 0x01
		if _, err := public.VerifyInput(alpha, bad); !errors.Is(err, ErrBadProof) {
			t.Fatalf("proof with byte %d flipped: err = %v, want ErrBadProof", i, err)
		}
	}
	if _, err := public.VerifyInput([]byte("c2sp.org/vrf-r256"), pi); !errors.Is(err, ErrBadProof) {
		t.Fatalf("other input: err = %v, want ErrBadProof", err)
	}
}

func TestInputAndNumbers(t *testing.T) {
	in, err := Input(IDTypeBSN, "999990019")
	if err != nil {
		t.Fatal(err)
	}
	if want := "spoor/vrf-index/v1\x00bsn\x00999990019"; string(in) != want {
		t.Fatalf("input %q, want %q", in, want)
	}
	for _, c := range []struct{ idType, number string }{
		{IDTypeBSN, "999990018"}, // fails the elfproef
		{IDTypeBSN, "000000000"}, // sum 0
		{IDTypeBSN, "99999001"},  // 8 digits
		{IDTypeBSN, "99999001x"}, // not a digit
		{IDTypeOnderwijsnummer, "999990019"},
		{"paspoort", "999990019"},
	} {
		_, err := Input(c.idType, c.number)
		if !errors.Is(err, ErrInvalidNumber) {
			t.Errorf("Input(%s, %s): err = %v, want ErrInvalidNumber", c.idType, c.number, err)
		} else if bytes.Contains([]byte(err.Error()), []byte(c.number)) {
			t.Errorf("error repeats the number: %v", err)
		}
	}
	// An onderwijsnummer: starts with 10, weighted sum = 5 (mod 11).
	// 1*9 + 0*8 + 1*7 + 0*6 + 0*5 + 0*4 + 0*3 + 0*2 - 0 = 16 = 5 (mod 11).
	if _, err := Input(IDTypeOnderwijsnummer, "101000000"); err != nil {
		t.Fatalf("a valid onderwijsnummer refused: %v", err)
	}
}

func TestKeysAndOutput(t *testing.T) {
	sk := GenerateKey()
	sk2, err := ParseSecretKey(sk.Bytes())
	if err != nil || !sk2.Public().Equal(sk.Public()) {
		t.Fatalf("secret key does not round-trip: %v", err)
	}
	pk, err := ParsePublicKeyHex(sk.Public().String())
	if err != nil || !pk.Equal(sk.Public()) {
		t.Fatalf("public key does not round-trip in hex: %v", err)
	}
	if _, err := ParsePublicKeyHex(hex.EncodeToString(bytes.Repeat([]byte{0xff}, 32))); !errors.Is(err, ErrBadKey) {
		t.Fatalf("non-canonical key: err = %v", err)
	}
	upper := strings.ToUpper(sk.Public().String())
	if upper != sk.Public().String() {
		if _, err := ParsePublicKeyHex(upper); !errors.Is(err, ErrBadKey) {
			t.Fatalf("upper-case hex accepted: %v", err)
		}
	}
	if _, err := ParseSecretKey(bytes.Repeat([]byte{0xff}, 32)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("non-canonical scalar: err = %v", err)
	}
	out, err := sk.Output(IDTypeBSN, "999990019")
	if err != nil || !ValidOutputHex(out) {
		t.Fatalf("Output = %q, %v", out, err)
	}
	proof, raw, err := sk.Prove(IDTypeBSN, "999990019")
	if err != nil || hex.EncodeToString(raw) != out {
		t.Fatalf("Prove and Output disagree: %v", err)
	}
	got, err := sk.Public().Verify(IDTypeBSN, "999990019", proof)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("Verify = %x, %v", got, err)
	}
	// The same proof for another child's number does not verify.
	if _, err := sk.Public().Verify(IDTypeBSN, "999990032", proof); !errors.Is(err, ErrBadProof) {
		t.Fatalf("a proof for another child's number: err = %v, want ErrBadProof", err)
	}
	// Another key gives another output for the same child.
	other, _ := GenerateKey().Output(IDTypeBSN, "999990019")
	if other == out {
		t.Fatal("two keys gave one output")
	}
	if ValidOutputHex(strings.ToUpper(out)) {
		t.Error("ValidOutputHex accepts upper case")
	}
	if ValidOutputHex(out[:127]) || ValidOutputHex(out+"0") || ValidOutputHex("") {
		t.Error("ValidOutputHex accepts a wrong length")
	}
}
