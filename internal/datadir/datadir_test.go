package datadir

import (
	"path/filepath"
	"testing"
)

// TestLayout pins the names on disk: data folders made by earlier releases
// must still be found, so a change here is a migration, not a rename.
func TestLayout(t *testing.T) {
	d := Dir(filepath.Join("srv", "spoor"))
	for got, want := range map[string]string{
		d.Ledger():                "srv/spoor/ledger",
		d.NATS():                  "srv/spoor/nats",
		d.DataKeys():              "srv/spoor/datakeys",
		d.LogKey():                "srv/spoor/log.key",
		d.LogVkey():               "srv/spoor/log.vkey",
		d.CosignerKey():           "srv/spoor/cosigner.key",
		d.IndexVRFKey():           "srv/spoor/index-vrf.key",
		d.CosignerVkey():          "srv/spoor/cosigner.vkey",
		d.FGToken():               "srv/spoor/fg.token",
		d.DemoKeys():              "srv/spoor/demo-keys",
		d.DemoDeskToken("desk-1"): "srv/spoor/demo-keys/desk-1.token",
		d.NATSCredentials():       "srv/spoor/nats-credentials",
	} {
		if got != filepath.FromSlash(want) {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
