package main

import (
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
)

// TestDemoDeskUsersOnALaterDemoVersion: the demo desk users stay when serve
// runs on a later version of the demo covenant given with --covenant (as
// the README's witness walk does), and are not given to a covenant the demo
// administrator did not sign.
func TestDemoDeskUsersOnALaterDemoVersion(t *testing.T) {
	for _, name := range []string{"amersfoort", "waterweg"} {
		dir := t.TempDir()
		env := testledger.LoadDemo(t, dir, name)
		v2 := env.CovenantWithout(t, env.Demo.Signed.Covenant.Parties[0].ID)
		f := &serveFlags{data: dir, demoName: "amersfoort", covenant: "covenant-v2.signed"}
		if got := demoCovenantName(f, v2); got != name {
			t.Errorf("%s: a later demo version gets demo desk users of %q", name, got)
		}
		other := testledger.New(t) // another demo folder: another administrator key
		if got := demoCovenantName(f, other.Demo.Signed); got != "" {
			t.Errorf("%s: a covenant signed by another administrator gets the demo desk users of %q", name, got)
		}
		f.covenant = ""
		f.demoName = name
		if got := demoCovenantName(f, env.Demo.Signed); got != name {
			t.Errorf("%s: the demo covenant itself gets %q", name, got)
		}
	}
}
