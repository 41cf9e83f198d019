package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/gateway"
	"github.com/spoor-ledger/spoor/verifier"
)

// newPurpose is a purpose that covenant version 2 of these tests adds.
const newPurpose = "terugkeer-na-thuiszitten"

// covenantV2 returns version 2 of the demo covenant with newPurpose in
// its vocabulary, signed by the demo administrator.
func covenantV2(t *testing.T, r *rig) *events.SignedCovenant {
	t.Helper()
	v1 := r.env.Demo.Signed
	y := string(v1.Envelope.Payload)
	for old, new := range map[string]string{
		"\nversion: 1\n":                 "\nversion: 2\n",
		"\nprevious: \"\"\n":             "\nprevious: \"" + v1.Hash() + "\"\n",
		"    - {id: thuiszittersaanpak,": "    - {id: " + newPurpose + ", label: \"Terugkeer naar school na thuiszitten\"}\n    - {id: thuiszittersaanpak,",
		"\n    thuiszittersaanpak: [":    "\n    " + newPurpose + ": [identificatie, contactgegevens, onderwijsgegevens, ondersteuningsbehoefte]\n    thuiszittersaanpak: [",
	} {
		if !strings.Contains(y, old) {
			t.Fatalf("the demo covenant has no %q", old)
		}
		y = strings.Replace(y, old, new, 1)
	}
	signed, err := events.SignCovenant([]byte(y), r.env.Demo.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := events.ParseSignedCovenant(signed)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestFollowsNewCovenantVersion runs the gateway with covenant version 1
// while it follows the ledger's GET /v1/covenants. A disclosure under a
// purpose only version 2 knows is refused; the ledger restarts with
// version 2, and without a restart of its own the gateway takes it in
// force and the same disclosure is committed, checked by the ledger
// against version 2.
func TestFollowsNewCovenantVersion(t *testing.T) {
	r := newRig(t, true, waitLong)
	body := input(func(m map[string]any) {
		m["purpose"] = newPurpose
		m["categories"] = []string{"identificatie", "onderwijsgegevens"}
	})
	res := r.post(tokenA, "follow-1", "application/json", body)
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), `"code":"purpose-unknown"`) {
		t.Fatalf("under version 1: %d %s, want 422 purpose-unknown", res.status, res.body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); r.gw.FollowCovenants(ctx, nil, r.ledgerHTTP.URL, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	v2 := covenantV2(t, r)
	r.restartLedger(v2)
	_, v2Leaf := r.l.Covenant()

	deadline := time.Now().Add(waitLong)
	for {
		res = r.post(tokenA, "follow-1", "application/json", body)
		if res.status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		if res.status != http.StatusUnprocessableEntity {
			t.Fatalf("while version 2 is on its way: %d %s", res.status, res.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res.status != http.StatusOK {
		t.Fatalf("the gateway never took version 2 in force: %d %s", res.status, res.body)
	}
	got := decodeResult(t, res.body)
	r.verifyReceipt(got)
	rec, err := verifier.ParseLeafRecord(got.LeafRecord)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CovenantIndex != v2Leaf {
		t.Fatalf("the event was checked against the covenant at leaf %d, want version 2 at leaf %d", rec.CovenantIndex, v2Leaf)
	}
	for _, f := range got.Findings {
		if f.Rule == events.RulePurposeUnknown {
			t.Fatalf("a finding under version 2: %+v", f)
		}
	}
}

// TestFollowRefusesForgedVersion serves the gateway a version 2 that the
// administrator did not sign, and one that does not follow version 1: the
// gateway keeps version 1 and says why.
func TestFollowRefusesForgedVersion(t *testing.T) {
	r := newRig(t, false, waitLong)
	v2 := covenantV2(t, r)
	forgerSkey, _, err := events.GenerateAdminKey("forger.example")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := events.SignCovenant(v2.Envelope.Payload, forgerSkey)
	if err != nil {
		t.Fatal(err)
	}
	unlinked := strings.Replace(string(v2.Envelope.Payload), v2.Covenant.Previous, strings.Repeat("0", 64), 1)
	unlinkedSigned, err := events.SignCovenant([]byte(unlinked), r.env.Demo.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		signed []byte
		want   string
	}{
		"another signer": {forged, "not signed by administrator key"},
		"not linked":     {unlinkedSigned, "previous"},
	} {
		t.Run(name, func(t *testing.T) {
			ledger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				_ = json.NewEncoder(w).Encode(events.CovenantVersions{Versions: []events.LoggedCovenant{
					{Version: 1, LeafIndex: 0, Signed: r.env.Demo.Signed.Envelope.Raw},
					{Version: 2, LeafIndex: 7, Signed: tc.signed},
				}})
			}))
			defer ledger.Close()
			gw, err := gateway.New(r.cfg)
			if err != nil {
				t.Fatal(err)
			}
			v, err := gw.UpdateCovenant(context.Background(), nil, ledger.URL)
			if err == nil || !strings.Contains(err.Error(), tc.want) || v != 1 {
				t.Fatalf("UpdateCovenant = %d, %v; want version 1 kept and an error about the %s", v, err, tc.want)
			}
		})
	}
}
