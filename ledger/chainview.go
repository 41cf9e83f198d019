package ledger

import (
	"slices"

	"github.com/spoor-ledger/spoor/events"
)

// ChainView is what readers outside the sequencer may see of the covenant
// chain: the version in force and every party id any version listed. The
// desk scope (ledger/answer) is decided on it, and a built bundle's check
// pins version 1's administrator key when the ledger is given none. A view
// is never changed once published: a new covenant version publishes a new
// one.
type ChainView struct {
	First      *events.SignedCovenant   // version 1
	Latest     *events.SignedCovenant   // the version in force
	Versions   []*events.SignedCovenant // every version, version 1 first
	EverListed []string                 // every party id any version listed, sorted
	// Policy is the witness policy of the version in force, nil when it
	// has none (witnessed.go).
	Policy *events.WitnessPolicy
	// PolicyErr is set when the version in force has a policy text that
	// does not parse (the chain checked it, so only a bug gets here): the
	// ledger then requires witnesses that it can never satisfy, failing
	// closed rather than serving unwitnessed checkpoints as if none were
	// required.
	PolicyErr error
}

// ChainView returns the covenant chain as it was last published, or nil
// before the ledger has a covenant. The HTTP handlers and the answer
// service run beside the sequencer and a standby's Apply, which own the
// chain, so they read this snapshot instead.
func (l *Ledger) ChainView() *ChainView { return l.chainView.Load() }

// publishChain makes the chain's current state visible to readers.
func (l *Ledger) publishChain() {
	v := &ChainView{First: l.chain.Version(1), Latest: l.chain.Latest()}
	seen := map[string]bool{}
	for n := 1; n <= l.chain.Len(); n++ {
		v.Versions = append(v.Versions, l.chain.Version(n))
		for _, p := range l.chain.Version(n).Covenant.Parties {
			if !seen[p.ID] {
				seen[p.ID] = true
				v.EverListed = append(v.EverListed, p.ID)
			}
		}
	}
	slices.Sort(v.EverListed)
	if text := v.Latest.Covenant.WitnessPolicy; text != "" {
		// The chain accepted the version, so its policy parsed then.
		v.Policy, v.PolicyErr = events.ParseWitnessPolicy(text)
	}
	l.chainView.Store(v)
	l.covenant.Store(v.Latest)
}
