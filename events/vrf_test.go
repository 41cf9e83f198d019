package events_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// vrfKATPath holds known answers for the VRF output of wire format v2, for
// publishers not written in Go: the VRF secret key of a pseudonym key id, and
// per subject the VRF input, the proof and the output (subject.vrf_output).
var vrfKATPath = filepath.Join(vectorDir, "vrf-outputs.json")

type vrfKAT struct {
	Comment string `json:"comment"`
	Keys    []struct {
		KeyID     string `json:"key_id"`
		SecretHex string `json:"vrf_secret_hex"`
		PublicHex string `json:"vrf_public_key"`
	} `json:"keys"`
	Vectors []struct {
		KeyID  string `json:"key_id"`
		IDType string `json:"id_type"`
		Number string `json:"number"`
		Input  string `json:"vrf_input_hex"`
		Proof  string `json:"proof_hex"`
		Output string `json:"vrf_output"`
	} `json:"vectors"`
}

func loadVRFKAT(t testing.TB) (*vrfKAT, map[string]*aboutchild.SecretKey) {
	t.Helper()
	b, err := os.ReadFile(vrfKATPath)
	if err != nil {
		t.Fatal(err)
	}
	var kat vrfKAT
	if err := json.Unmarshal(b, &kat); err != nil {
		t.Fatal(err)
	}
	keys := map[string]*aboutchild.SecretKey{}
	for _, k := range kat.Keys {
		raw, err := hex.DecodeString(k.SecretHex)
		if err != nil {
			t.Fatal(err)
		}
		sk, err := aboutchild.ParseSecretKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		if sk.Public().String() != k.PublicHex {
			t.Fatalf("key %s: public key %s, stored %s", k.KeyID, sk.Public(), k.PublicHex)
		}
		keys[k.KeyID] = sk
	}
	return &kat, keys
}

func TestVRFKnownAnswers(t *testing.T) {
	kat, keys := loadVRFKAT(t)
	for i, v := range kat.Vectors {
		sk := keys[v.KeyID]
		in, err := aboutchild.Input(v.IDType, v.Number)
		if err != nil {
			t.Fatal(err)
		}
		if want := "spoor/vrf-index/v1\x00" + v.IDType + "\x00" + v.Number; string(in) != want {
			t.Fatalf("vector %d: input %q, the definition gives %q", i, in, want)
		}
		proof, out, _ := sk.Prove(v.IDType, v.Number)
		subject, err := events.SubjectFor(events.SubjectKey{ID: v.KeyID, Secret: make([]byte, 32), VRF: sk}, events.IDType(v.IDType), v.Number)
		if err != nil {
			t.Fatal(err)
		}
		if subject.VRFOutput != hex.EncodeToString(out) || subject.Schema() != events.SchemaV2 {
			t.Fatalf("vector %d: SubjectFor gives %s (%s)", i, subject.VRFOutput, subject.Schema())
		}
		if updateGolden() {
			kat.Vectors[i].Input, kat.Vectors[i].Proof, kat.Vectors[i].Output = hex.EncodeToString(in), hex.EncodeToString(proof), hex.EncodeToString(out)
			continue
		}
		if hex.EncodeToString(in) != v.Input || hex.EncodeToString(proof) != v.Proof || hex.EncodeToString(out) != v.Output {
			t.Errorf("vector %d (%s under %s) differs from the stored answer", i, v.IDType, v.KeyID)
		}
	}
	if updateGolden() {
		b, _ := json.MarshalIndent(kat, "", "  ")
		if err := os.WriteFile(vrfKATPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The v2 golden envelope carries the answer for its subject.
	v := computeVector(t, "v2")
	found := false
	for _, k := range kat.Vectors {
		found = found || (k.Output == v.Disclosure.Subject.VRFOutput && k.KeyID == v.Disclosure.Subject.KeyID)
	}
	if !found || v.Disclosure.Schema != events.SchemaV2 {
		t.Error("the v2 golden vector's vrf_output is not one of vrf-outputs.json")
	}
}

func TestSchemaV2Validation(t *testing.T) {
	base := computeVector(t, "v2").Disclosure
	if err := base.Validate(); err != nil {
		t.Fatalf("golden v2 disclosure invalid: %v", err)
	}
	out := base.Subject.VRFOutput
	for name, c := range map[string]struct {
		schema, vrf string
		field       string
	}{
		"v1 with an output": {events.SchemaV1, out, "subject.vrf_output"},
		"v2 without":        {events.SchemaV2, "", "subject.vrf_output"},
		"v2 upper case":     {events.SchemaV2, strings.ToUpper(out), "subject.vrf_output"},
		"v2 short":          {events.SchemaV2, out[:126], "subject.vrf_output"},
		"v2 long":           {events.SchemaV2, out + "00", "subject.vrf_output"},
		"unknown schema":    {"spoor.disclosure/v3", out, "schema"},
	} {
		d := *base
		d.Schema, d.Subject.VRFOutput = c.schema, c.vrf
		err := d.Validate()
		var ves events.ValidationErrors
		if !errors.As(err, &ves) || ves[0].Field != c.field {
			t.Errorf("%s: err = %v, want a problem with %s", name, err, c.field)
		}
	}
	// A v1 disclosure re-encodes without the member: old events keep their bytes.
	d := *base
	d.Schema, d.Subject.VRFOutput = events.SchemaV1, ""
	b, _ := d.MarshalCanonical()
	if strings.Contains(string(b), "vrf_output") {
		t.Error("a v1 payload carries vrf_output")
	}
	// A v2 payload with an empty member is not canonical (optional members are left out).
	b2, _ := base.MarshalCanonical()
	bad := strings.Replace(string(b2), `"vrf_output":"`+out+`"`, `"vrf_output":""`, 1)
	if _, err := events.DecodeDisclosure([]byte(bad)); !errors.Is(err, events.ErrNonCanonical) {
		t.Errorf("empty vrf_output: err = %v, want ErrNonCanonical", err)
	}
}

func TestSubjectKeyFileWithVRF(t *testing.T) {
	k, err := events.GenerateSubjectKey("kv-2026-1")
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(k)
	if strings.Contains(string(plain), "vrf_secret") {
		t.Fatal("a key file without a VRF secret names one")
	}
	k.VRF = aboutchild.GenerateKey()
	b, _ := json.Marshal(k)
	back, err := events.ParseSubjectKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.VRF == nil || !back.VRF.Public().Equal(k.VRF.Public()) {
		t.Fatal("the VRF secret does not round-trip through the key file")
	}
	bad := strings.Replace(string(b), `"vrf_secret":"`, `"vrf_secret":"//`, 1)
	if _, err := events.ParseSubjectKey([]byte(bad)); err == nil {
		t.Fatal("a damaged vrf_secret was accepted")
	}
}
