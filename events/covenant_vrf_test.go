package events

import (
	"errors"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// vrfPub is the public key of the VRF test key 01..0100 (vrf-outputs.json).
const vrfPub = "5007db7f5fa75f8d8bfefb30417e4785eeac07f6a3315a6ddd1849a8a9349263"

func withVRF(s, keyID, pub string) string {
	return strings.Replace(s, "subject_keys: [k1]\n", "subject_keys: [k1]\nvrf_keys:\n  - key_id: "+keyID+"\n    vrf_public_key: \""+pub+"\"\n", 1)
}

func TestCovenantVRFKeys(t *testing.T) {
	valid := string(readTestdata(t, "valid.yaml"))
	c, err := ParseCovenantYAML([]byte(withVRF(valid, "k1", vrfPub)))
	if err != nil {
		t.Fatal(err)
	}
	pk, ok := c.VRFKey("k1")
	if !ok || pk.String() != vrfPub {
		t.Fatalf("VRFKey(k1) = %v, %v", pk, ok)
	}
	if _, ok := c.VRFKey("k2"); ok {
		t.Fatal("VRFKey(k2) found a key the covenant does not list")
	}
	for name, tc := range map[string]struct{ yaml, field string }{
		"unknown key id": {withVRF(valid, "k9", vrfPub), "vrf_keys[0].key_id"},
		"not hex":        {withVRF(valid, "k1", strings.ToUpper(vrfPub)), "vrf_keys[0].vrf_public_key"},
		"not canonical":  {withVRF(valid, "k1", strings.Repeat("ff", 32)), "vrf_keys[0].vrf_public_key"},
		"short":          {withVRF(valid, "k1", vrfPub[:62]), "vrf_keys[0].vrf_public_key"},
		"listed twice": {strings.Replace(withVRF(valid, "k1", vrfPub), "vrf_keys:\n", "vrf_keys:\n  - key_id: k1\n    vrf_public_key: \""+vrfPub+"\"\n", 1),
			"vrf_keys[1].key_id"},
	} {
		_, err := ParseCovenantYAML([]byte(tc.yaml))
		var es CovenantErrors
		if !errors.As(err, &es) || len(es) != 1 || es[0].Field != tc.field {
			t.Errorf("%s: err = %v, want one problem at %s", name, err, tc.field)
		}
	}
}

// TestChainKeepsVRFKeys: a later version may add a VRF key for a key id, not
// change or drop one (the outputs already logged are under it).
func TestChainKeepsVRFKeys(t *testing.T) {
	_, v2yaml, skey1, vkey1, _, _ := chainFixture(t)
	valid := string(readTestdata(t, "valid.yaml"))
	// A chain whose version 1 pairs k1 with a VRF key.
	v1 := mustSign(t, []byte(withVRF(valid, "k1", vrfPub)), skey1)
	v2 := strings.Replace(v2yaml, "previous: "+mustPrevious(t, v2yaml), "previous: "+v1.Hash(), 1)
	other := aboutchild.GenerateKey().Public().String()
	for name, tc := range map[string]struct {
		yaml string
		ok   bool
	}{
		"kept":    {withVRF(v2, "k1", vrfPub), true},
		"dropped": {v2, false},
		"changed": {withVRF(v2, "k1", other), false},
	} {
		ch, err := NewChain(v1, vkey1)
		if err != nil {
			t.Fatal(err)
		}
		err = ch.Append(mustSign(t, []byte(tc.yaml), skey1))
		if tc.ok && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !tc.ok && !errors.Is(err, ErrCovenantChain) {
			t.Errorf("%s: err = %v, want ErrCovenantChain", name, err)
		}
	}
}

func mustPrevious(t *testing.T, yml string) string {
	t.Helper()
	for _, line := range strings.Split(yml, "\n") {
		if p, ok := strings.CutPrefix(line, "previous: "); ok {
			return p
		}
	}
	t.Fatal("no previous line")
	return ""
}

func TestCheckVRFOutput(t *testing.T) {
	valid := string(readTestdata(t, "valid.yaml"))
	plain := mustParse(t, []byte(valid))
	withKey := mustParse(t, []byte(withVRF(valid, "k1", vrfPub)))
	d := testDisclosure(t)
	d.Subject.KeyID = "k1"
	out := strings.Repeat("ab", aboutchild.OutputSize)
	count := func(c *Covenant, d *Disclosure) int {
		n := 0
		for _, f := range c.Check(d) {
			if f.Rule == RuleVRFOutputMismatch {
				n++
				if f.Field != "subject.vrf_output" || strings.Contains(f.Message, out) {
					t.Errorf("finding %+v", f)
				}
			}
		}
		return n
	}
	v1, v2 := *d, *d
	v1.Schema, v1.Subject.VRFOutput = SchemaV1, ""
	v2.Schema, v2.Subject.VRFOutput = SchemaV2, out
	if count(plain, &v1) != 0 || count(withKey, &v2) != 0 {
		t.Error("a finding for an event that fits its key")
	}
	if count(withKey, &v1) != 1 {
		t.Error("no finding for a v1 event under a key id with a VRF key")
	}
	if count(plain, &v2) != 1 {
		t.Error("no finding for a v2 event under a key id without a VRF key")
	}
}
