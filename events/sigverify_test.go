package events_test

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/edwards25519"
	"github.com/hdevalence/ed25519consensus"

	"github.com/spoor-ledger/spoor/events"
)

// The ledger verifies signatures with curve25519-voi under the ZIP-215 rule,
// one at a time and in batches; these tests hold both to the reference
// ZIP-215 implementation (hdevalence/ed25519consensus) exactly, and check
// that whatever crypto/ed25519 accepts is accepted too, on the inputs where
// Ed25519 implementations are known to disagree: keys and R values with a
// small-order (torsion) component, where the cofactored equation holds but
// the cofactorless one may not; small-order keys; non-canonical encodings
// of A, R and S.

const edgeVectors = "testdata/ed25519-edges.json"

// sigCase is one signature check with crypto/ed25519's answer.
type sigCase struct {
	Name string `json:"name"`
	Pub  string `json:"pub"`
	Msg  string `json:"msg"`
	Sig  string `json:"sig"`
	// Valid is crypto/ed25519's verdict (cofactorless equation).
	Valid bool `json:"valid"`
	// ZIP215 is the ZIP-215 verdict (ed25519consensus), which the ledger's
	// must equal.
	ZIP215 bool `json:"zip215"`
	// Cofactored is whether [8](SB - kA - R) is the identity: what a
	// ZIP-215 verifier would decide on canonical inputs.
	Cofactored bool `json:"cofactored"`
}

// torsion returns the eight points of order dividing 8, T[i] = i*T[1],
// starting from a point of order 8 whose encoding is well known.
func torsion(tb testing.TB) [8]*edwards25519.Point {
	enc, _ := hex.DecodeString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	t1, err := new(edwards25519.Point).SetBytes(enc)
	if err != nil {
		tb.Fatalf("order-8 point: %v", err)
	}
	var ts [8]*edwards25519.Point
	ts[0] = edwards25519.NewIdentityPoint()
	for i := 1; i < 8; i++ {
		ts[i] = new(edwards25519.Point).Add(ts[i-1], t1)
	}
	if ts[4].Equal(edwards25519.NewIdentityPoint()) == 1 ||
		new(edwards25519.Point).Add(ts[7], t1).Equal(edwards25519.NewIdentityPoint()) != 1 {
		tb.Fatal("the seed point is not of order 8")
	}
	return ts
}

// scalarFrom derives a scalar from label, deterministically.
func scalarFrom(label string) *edwards25519.Scalar {
	h := sha512.Sum512([]byte(label))
	s, _ := edwards25519.NewScalar().SetUniformBytes(h[:])
	return s
}

// craft signs msg as if by the key a*B + ta with nonce point r*B + tr, the
// way a malicious signer who knows a and r would: S = r + k*a. The
// cofactored equation then always holds; the cofactorless one holds only
// when tr = -k*ta.
func craft(a, r *edwards25519.Scalar, ta, tr *edwards25519.Point, msg []byte) (pub, sig []byte) {
	A := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), ta)
	R := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(r), tr)
	pub, rb := A.Bytes(), R.Bytes()
	k := hram(rb, pub, msg)
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return pub, append(rb, S.Bytes()...)
}

func hram(r, pub, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(r)
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return k
}

// cofactored reports whether [8](SB - kA - R) is the identity, or false
// when A, R or S does not decode.
func cofactored(pub, msg, sig []byte) bool {
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	R, err := new(edwards25519.Point).SetBytes(sig[:32])
	if err != nil {
		return false
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	k := hram(sig[:32], pub, msg)
	d := new(edwards25519.Point).ScalarBaseMult(S)
	d.Subtract(d, new(edwards25519.Point).ScalarMult(k, A))
	d.Subtract(d, R)
	return d.MultByCofactor(d).Equal(edwards25519.NewIdentityPoint()) == 1
}

// groupOrder is L, the order of the prime subgroup.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// plusL returns the 32-byte little-endian encoding of s + L: the same
// scalar, not in canonical form.
func plusL(s []byte) []byte {
	be := make([]byte, 32)
	for i := range s {
		be[31-i] = s[i]
	}
	v := new(big.Int).Add(new(big.Int).SetBytes(be), groupOrder)
	out := make([]byte, 32)
	v.FillBytes(be)
	for i := range be {
		out[31-i] = be[i]
	}
	return out
}

// nonCanonical returns the other encodings of the point enc encodes, where
// one exists: y + p for y < 19, and the sign bit set where x = 0.
func nonCanonical(enc []byte) [][]byte {
	var out [][]byte
	y := make([]byte, 32)
	copy(y, enc)
	y[31] &= 0x7f
	small := true
	for _, b := range y[1:] {
		small = small && b == 0
	}
	if small && y[0] < 19 {
		// y + p = y + 2^255 - 19, with the sign bit of enc kept.
		v := make([]byte, 32)
		copy(v, enc)
		v[0] = y[0] + 0xed
		for i := 1; i < 31; i++ {
			v[i] = 0xff
		}
		v[31] = 0x7f | enc[31]&0x80
		out = append(out, v)
	}
	if p, err := new(edwards25519.Point).SetBytes(enc); err == nil {
		// x = 0 exactly for the identity and the point of order 2.
		if p.Equal(edwards25519.NewIdentityPoint()) == 1 || new(edwards25519.Point).Add(p, p).Equal(edwards25519.NewIdentityPoint()) == 1 {
			v := append([]byte(nil), enc...)
			v[31] |= 0x80
			out = append(out, v)
		}
	}
	return out
}

// edgeCases builds the vectors: crafted signatures over every pair of
// torsion components of A and R, the same with a = r = 0 (small-order key
// and R), non-canonical encodings of A and R and S, and an honest signature.
func edgeCases(tb testing.TB) []sigCase {
	ts := torsion(tb)
	var cases []sigCase
	add := func(name string, pub, msg, sig []byte) {
		cases = append(cases, sigCase{Name: name, Pub: hex.EncodeToString(pub), Msg: hex.EncodeToString(msg),
			Sig: hex.EncodeToString(sig), Valid: ed25519.Verify(pub, msg, sig), ZIP215: ed25519consensus.Verify(pub, msg, sig),
			Cofactored: cofactored(pub, msg, sig)})
	}
	zero := edwards25519.NewScalar()
	for i := range ts {
		for j := range ts {
			msg := fmt.Appendf(nil, "spoor edge case A+T%d R+T%d", i, j)
			pub, sig := craft(scalarFrom(fmt.Sprint("a", i, j)), scalarFrom(fmt.Sprint("r", i, j)), ts[i], ts[j], msg)
			add(fmt.Sprintf("torsion A+T%d R+T%d", i, j), pub, msg, sig)
			spub, ssig := craft(zero, zero, ts[i], ts[j], msg)
			add(fmt.Sprintf("small-order A=T%d R=T%d", i, j), spub, msg, ssig)
			for n, v := range nonCanonical(spub) {
				// The same signature: k changes with A's bytes.
				add(fmt.Sprintf("small-order A=T%d non-canonical #%d R=T%d", i, n, j), v, msg, ssig)
			}
			for n, v := range nonCanonical(ssig[:32]) {
				add(fmt.Sprintf("small-order A=T%d R=T%d non-canonical #%d", i, j, n), spub, msg, append(v, ssig[32:]...))
			}
			add(fmt.Sprintf("torsion A+T%d R+T%d S+L", i, j), pub, msg, append(sig[:32:32], plusL(sig[32:])...))
		}
	}
	pub, priv, _ := ed25519.GenerateKey(newSeededReader("honest"))
	msg := []byte("an honest disclosure")
	sig := ed25519.Sign(priv, msg)
	add("honest", pub, msg, sig)
	add("honest S+L", pub, msg, append(sig[:32:32], plusL(sig[32:])...))
	bad := append([]byte(nil), sig...)
	bad[5] ^= 1
	add("honest R bit flipped", pub, msg, bad)
	return cases
}

// seededReader is a deterministic byte stream for key generation.
type seededReader struct {
	seed [64]byte
	n    int
}

func newSeededReader(label string) *seededReader {
	return &seededReader{seed: sha512.Sum512([]byte(label))}
}

func (r *seededReader) Read(p []byte) (int, error) {
	for i := range p {
		if r.n == len(r.seed) {
			r.seed, r.n = sha512.Sum512(r.seed[:]), 0
		}
		p[i] = r.seed[r.n]
		r.n++
	}
	return len(p), nil
}

// TestSignatureEdgeCases checks the ledger's verifier, single and in
// batches, against the golden verdicts: ZIP-215's, and crypto/ed25519's
// accepted set as a subset.
func TestSignatureEdgeCases(t *testing.T) {
	if updateGolden() {
		b, err := json.MarshalIndent(edgeCases(t), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(edgeVectors, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.FromSlash(edgeVectors))
	if err != nil {
		t.Fatalf("%v (run go test ./events -run TestSignatureEdgeCases -update)", err)
	}
	var cases []sigCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	hpub, hmsg, hsig := honestSignatures(4)
	var valid, zipOnly, refused int
	var pubs, msgs, sigs [][]byte
	var want []bool
	for _, c := range cases {
		pub, _ := hex.DecodeString(c.Pub)
		msg, _ := hex.DecodeString(c.Msg)
		sig, _ := hex.DecodeString(c.Sig)
		if got := ed25519.Verify(pub, msg, sig); got != c.Valid {
			t.Errorf("%s: crypto/ed25519 says %v, the vector says %v", c.Name, got, c.Valid)
		}
		if got := ed25519consensus.Verify(pub, msg, sig); got != c.ZIP215 {
			t.Errorf("%s: ed25519consensus says %v, the vector says %v", c.Name, got, c.ZIP215)
		}
		if c.Valid && !c.ZIP215 {
			t.Errorf("%s: crypto/ed25519 accepts what ZIP-215 refuses", c.Name)
		}
		if got := events.VerifySignature(pub, msg, sig); got != c.ZIP215 {
			t.Errorf("%s: the ledger's verifier says %v, ZIP-215 says %v", c.Name, got, c.ZIP215)
		}
		// Twice: the second call uses the cached expanded key.
		if got := events.VerifySignature(pub, msg, sig); got != c.ZIP215 {
			t.Errorf("%s: the ledger's verifier (cached key) says %v, ZIP-215 says %v", c.Name, got, c.ZIP215)
		}
		// In a batch with honest signatures: the batch equation holds only
		// if this one is valid, and the verdicts are the single ones.
		got := events.VerifySignatures(append(hpub, pub), append(hmsg, msg), append(hsig, sig))
		if !got[0] || !got[1] || !got[2] || !got[3] || got[4] != c.ZIP215 {
			t.Errorf("%s: in a batch of five the verdicts are %v, want four honest and %v", c.Name, got, c.ZIP215)
		}
		pubs, msgs, sigs, want = append(pubs, pub), append(msgs, msg), append(sigs, sig), append(want, c.ZIP215)
		switch {
		case c.Valid:
			valid++
		case c.ZIP215:
			zipOnly++
		default:
			refused++
		}
	}
	// All of them in one batch.
	for i, got := range events.VerifySignatures(pubs, msgs, sigs) {
		if got != want[i] {
			t.Errorf("%s: in one batch of all vectors the verdict is %v, want %v", cases[i].Name, got, want[i])
		}
	}
	// The vectors are only worth something if they contain the cases where
	// the rules part: valid ones, ones only ZIP-215 accepts, refused ones.
	if valid < 10 || zipOnly < 10 || refused < 10 {
		t.Fatalf("the vectors hold %d valid, %d ZIP-215-only and %d refused signatures; regenerate them", valid, zipOnly, refused)
	}
	t.Logf("%d vectors: %d valid under both rules, %d under ZIP-215 only, %d under neither", len(cases), valid, zipOnly, refused)
}

// honestSignatures returns n signatures by n keys.
func honestSignatures(n int) (pubs, msgs, sigs [][]byte) {
	for i := range n {
		pub, priv, _ := ed25519.GenerateKey(newSeededReader(fmt.Sprint("batch", i)))
		msg := fmt.Appendf(nil, "honest disclosure %d", i)
		pubs, msgs, sigs = append(pubs, pub), append(msgs, msg), append(sigs, ed25519.Sign(priv, msg))
	}
	return pubs, msgs, sigs
}

// TestVerifySignatureLengths: wrong lengths are false, not a panic (as
// crypto/ed25519 would for a short key).
func TestVerifySignatureLengths(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	sig := ed25519.Sign(priv, []byte("m"))
	for _, c := range []struct {
		name     string
		pub, sig []byte
	}{
		{"short key", pub[:31], sig}, {"long key", append(pub, 0), sig},
		{"short sig", pub, sig[:63]}, {"long sig", pub, append(sig, 0)}, {"no key", nil, sig},
	} {
		if events.VerifySignature(c.pub, []byte("m"), c.sig) {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if !events.VerifySignature(pub, []byte("m"), sig) {
		t.Fatal("a good signature is refused")
	}
}

// FuzzVerifySignature compares the ledger's verifier, single and in a
// batch, with ZIP-215's reference and crypto/ed25519 on
// crafted signatures: key and R with chosen torsion components, then
// optionally damaged (S + L, a flipped bit, a non-canonical key encoding),
// and on raw bytes.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("seed"), []byte("message"), uint8(0), uint8(0), uint8(0))
	f.Add([]byte("seed"), []byte("message"), uint8(1), uint8(7), uint8(1))
	f.Add([]byte("other"), []byte(""), uint8(4), uint8(4), uint8(2))
	f.Add([]byte{0}, []byte("x"), uint8(2), uint8(6), uint8(3))
	f.Add(make([]byte, 96), []byte("raw"), uint8(0), uint8(0), uint8(4))
	ts := torsion(f)
	f.Fuzz(func(t *testing.T, seed, msg []byte, ti, tj, mode uint8) {
		var pub, sig []byte
		switch mode % 6 {
		case 4:
			// Raw bytes: key and signature straight from the seed.
			buf := make([]byte, 96)
			copy(buf, seed)
			pub, sig = buf[:32], buf[32:]
		default:
			a, r := scalarFrom("a"+string(seed)), scalarFrom("r"+string(seed))
			if mode%6 == 5 {
				a, r = edwards25519.NewScalar(), edwards25519.NewScalar()
			}
			pub, sig = craft(a, r, ts[ti%8], ts[tj%8], msg)
			switch mode % 6 {
			case 1:
				sig = append(sig[:32:32], plusL(sig[32:])...)
			case 2:
				sig[int(ti)%64] ^= 1 << (tj % 8)
			case 3:
				if nc := nonCanonical(pub); len(nc) > 0 {
					pub = nc[int(tj)%len(nc)]
				}
			}
		}
		want := ed25519consensus.Verify(pub, msg, sig)
		if got := events.VerifySignature(pub, msg, sig); got != want {
			t.Fatalf("pub %x sig %x msg %x: the ledger's verifier says %v, ZIP-215 says %v", pub, sig, msg, got, want)
		}
		if ed25519.Verify(pub, msg, sig) && !want {
			t.Fatalf("pub %x sig %x msg %x: crypto/ed25519 accepts what ZIP-215 refuses", pub, sig, msg)
		}
		hpub, hmsg, hsig := honestSignatures(4)
		got := events.VerifySignatures(append(hpub, pub), append(hmsg, msg), append(hsig, sig))
		if !got[0] || !got[1] || !got[2] || !got[3] || got[4] != want {
			t.Fatalf("pub %x sig %x msg %x: batch verdicts %v, want four honest and %v", pub, sig, msg, got, want)
		}
	})
}
