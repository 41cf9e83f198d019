package subjectindex

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

func TestOpenVRFKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index-vrf.key")
	k, err := OpenVRFKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the VRF key file has mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := OpenVRFKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Public().Equal(k.Public()) {
		t.Fatal("a reopened VRF key differs: every stored map key would be lost")
	}
	ik := vsi.IndexKey(sha256.Sum256([]byte("index key")))
	m1, err := k.MapKey(ik, "gemeente-a")
	if err != nil {
		t.Fatal(err)
	}
	m2, proof, err := again.Prove(ik, "gemeente-a")
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Errorf("MapKey %x and Prove %x differ", m1, m2)
	}
	if cached, _ := k.MapKey(ik, "gemeente-a"); cached != m1 {
		t.Errorf("the cached map key differs")
	}
	got, err := k.Public().MapKey(ik, "gemeente-a", proof)
	if err != nil || got != m1 {
		t.Errorf("the verifier's check of the proof: %x, %v", got, err)
	}
	if other, _ := GenerateVRFKey().MapKey(ik, "gemeente-a"); other == m1 {
		t.Errorf("two VRF keys give one map key")
	}
	if err := os.WriteFile(path, []byte("spoor-subject-index-vrf-key/v1\nzz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenVRFKey(path); err == nil {
		t.Error("a damaged VRF key file was read")
	}
}

func BenchmarkVRFProve(b *testing.B) {
	k := GenerateVRFKey()
	ik := vsi.IndexKey(sha256.Sum256([]byte("index key")))
	for b.Loop() {
		if _, _, err := k.Prove(ik, "gemeente-a"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVRFVerify(b *testing.B) {
	k := GenerateVRFKey()
	ik := vsi.IndexKey(sha256.Sum256([]byte("index key")))
	_, proof, _ := k.Prove(ik, "gemeente-a")
	for b.Loop() {
		if _, err := k.Public().MapKey(ik, "gemeente-a", proof); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEvaluateIsProveHash: the proof-less evaluation the sequencer uses
// gives the output of the library's Prove (which follows the spec's
// vectors), for many keys and inputs, and so the map keys a bundle's
// verifier checks.
func TestEvaluateIsProveHash(t *testing.T) {
	for i := range 50 {
		k := GenerateVRFKey()
		ik := vsi.IndexKey(sha256.Sum256([]byte{byte(i)}))
		alpha, err := vsi.MapKeyInput(ik, "party-"+string(rune('a'+i%26)))
		if err != nil {
			t.Fatal(err)
		}
		want := k.sk.Prove(alpha).Hash()
		if got := k.evaluate(alpha); !bytes.Equal(got, want) {
			t.Fatalf("key %d: evaluate %x, Prove's hash %x", i, got[:8], want[:8])
		}
		m, err := k.MapKey(ik, "party-"+string(rune('a'+i%26)))
		if err != nil || m != vsi.MapKeyOfHash(want) {
			t.Fatalf("key %d: MapKey %x, %v", i, m[:8], err)
		}
	}
}

func BenchmarkVRFEvaluate(b *testing.B) {
	k := GenerateVRFKey()
	alpha, _ := vsi.MapKeyInput(vsi.IndexKey(sha256.Sum256([]byte("index key"))), "gemeente-a")
	for b.Loop() {
		k.evaluate(alpha)
	}
}
