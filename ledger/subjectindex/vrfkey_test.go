package subjectindex

import (
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
