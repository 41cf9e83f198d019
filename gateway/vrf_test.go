package gateway_test

import (
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/gateway"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// TestGatewayVRFOutput: when the covenant pairs the pseudonym key with a VRF
// key, the gateway signs wire format v2 events carrying the number's VRF
// output, and the ledger logs them (issue 23).
func TestGatewayVRFOutput(t *testing.T) {
	r := newRig(t, true, waitLong)
	vrf := aboutchild.GenerateKey()
	// Covenant version 2 pairs the pseudonym key with the VRF key, signed
	// by the demo administrator as the chain requires.
	v1 := r.env.Demo.Signed
	y := string(v1.Envelope.Payload)
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+v1.Hash()+"\"\n", 1)
	y += "vrf_keys:\n  - key_id: " + r.cfg.SubjectKey.ID + "\n    vrf_public_key: " + vrf.Public().String() + "\n"
	signed, err := events.SignCovenant([]byte(y), r.env.Demo.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := gateway.LoadCovenantChain([][]byte{v1.Envelope.Raw, signed}, r.env.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	cov := *chain.Latest().Covenant
	v1Chain := r.cfg.Chain

	// Without the secret, or with another one, the gateway does not start.
	r.cfg.Chain = chain
	if _, err := gateway.New(r.cfg); err == nil || !strings.Contains(err.Error(), "VRF secret") {
		t.Fatalf("New without the VRF secret: %v", err)
	}
	r.cfg.SubjectKey.VRF = aboutchild.GenerateKey()
	if _, err := gateway.New(r.cfg); err == nil || !strings.Contains(err.Error(), "not the one") {
		t.Fatalf("New with another VRF secret: %v", err)
	}
	r.cfg.SubjectKey.VRF = vrf
	r.swap(r.newGateway())

	resp := r.post(tokenA, "vrf-1", "application/json", input(nil))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	res := decodeResult(t, resp.body)
	r.verifyReceipt(res)
	d, _, err := events.Open(res.Envelope, cov.Origin, &cov)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := vrf.Prove(aboutchild.IDTypeBSN, bsn)
	if err != nil {
		t.Fatal(err)
	}
	if d.Schema != events.SchemaV2 || d.Subject.VRFOutput != hex.EncodeToString(out) {
		t.Fatalf("schema %s, vrf_output %s: want v2 with the number's output", d.Schema, d.Subject.VRFOutput)
	}
	if fs := cov.Check(d); len(fs) != 0 {
		t.Errorf("findings on a v2 event under its VRF key: %v", fs)
	}

	// A covenant without the VRF key: v1 events, even with a secret at hand.
	r.cfg.Chain = v1Chain
	r.swap(r.newGateway())
	resp = r.post(tokenA, "vrf-2", "application/json", input(nil))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	d, _, err = events.Open(decodeResult(t, resp.body).Envelope, cov.Origin, r.env.Demo.Signed.Covenant)
	if err != nil {
		t.Fatal(err)
	}
	if d.Schema != events.SchemaV1 || d.Subject.VRFOutput != "" {
		t.Fatalf("schema %s with vrf_output %q under a covenant without VRF keys", d.Schema, d.Subject.VRFOutput)
	}
	r.checkNoNumberStored()
}

// swap serves g in place of the rig's gateway.
func (r *rig) swap(g *gateway.Gateway) {
	r.t.Helper()
	r.gw = g
	srv := httptest.NewServer(g.Handler())
	r.t.Cleanup(srv.Close)
	r.http = srv
}
