package verifier_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

type policyWitness struct {
	name   string
	vkey   string
	signer note.Signer
}

func newPolicyWitness(t *testing.T, name string) policyWitness {
	t.Helper()
	skey, vkey, err := verifier.GenerateWitnessKey(name + ".example")
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return policyWitness{name, vkey, s}
}

// cosign appends w's cosignature line to the signed checkpoint cp.
func cosign(t *testing.T, cp []byte, s note.Signer) []byte {
	t.Helper()
	text := cp[:bytes.LastIndex(cp, []byte("\n\n"))+1]
	signed, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.Clone(cp), signed[len(text)+1:]...)
}

// TestCheckWitnessPolicy: under a 2-of-3 policy a checkpoint cosigned by
// two witnesses meets the quorum (with each witness's time), one does not
// (ErrQuorumNotMet, naming who did), a cosignature by a key outside the
// policy counts for nothing, and a bad or repeated line by a policy key is
// refused.
func TestCheckWitnessPolicy(t *testing.T) {
	const origin = "spoor.example/policy"
	logSkey, logVkey, cosSkey, cosVkey, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verifier.NewCheckpointSigner(logSkey, cosSkey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(logVkey, cosVkey)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, stranger := newPolicyWitness(t, "fg-a"), newPolicyWitness(t, "fg-b"), newPolicyWitness(t, "fg-c"), newPolicyWitness(t, "stranger")
	policy, err := events.ParseWitnessPolicy("log " + logVkey + "\nwitness fg-a " + a.vkey + "\nwitness fg-b " + b.vkey +
		"\nwitness fg-c " + c.vkey + "\ngroup fgs 2 fg-a fg-b fg-c\nquorum fgs\n")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := signer.Sign(origin, 7, sha256.Sum256([]byte("root")))
	if err != nil {
		t.Fatal(err)
	}
	open := func(b []byte) *verifier.Checkpoint {
		t.Helper()
		c, err := verifier.OpenCheckpoint(b, keys)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	before := time.Now().Add(-time.Second)
	res, err := verifier.CheckWitnessPolicy(open(cosign(t, cosign(t, cp, c.signer), a.signer)), policy)
	if err != nil || !res.Met || len(res.Cosigned) != 2 || res.Cosigned[0].Witness != "fg-a" || res.Cosigned[1].Witness != "fg-c" {
		t.Fatalf("two of three: %+v, %v", res, err)
	}
	for _, cs := range res.Cosigned {
		if cs.Time.Before(before.Truncate(time.Second)) || cs.Time.After(time.Now()) {
			t.Errorf("%s cosigned at %v, not now", cs.Witness, cs.Time)
		}
	}

	res, err = verifier.CheckWitnessPolicy(open(cosign(t, cosign(t, cp, b.signer), stranger.signer)), policy)
	if !errors.Is(err, verifier.ErrQuorumNotMet) || res == nil || res.Met || len(res.Cosigned) != 1 || res.Cosigned[0].Witness != "fg-b" {
		t.Fatalf("one policy witness and a stranger: %+v, %v; want ErrQuorumNotMet with fg-b", res, err)
	}
	if _, err := verifier.CheckWitnessPolicy(open(cp), policy); !errors.Is(err, verifier.ErrQuorumNotMet) {
		t.Fatalf("no witness: %v, want ErrQuorumNotMet", err)
	}

	// A's line moved onto another checkpoint of the same log does not verify there.
	other, err := signer.Sign(origin, 8, sha256.Sum256([]byte("other root")))
	if err != nil {
		t.Fatal(err)
	}
	aOnOther := cosign(t, other, a.signer)
	aLine := aOnOther[bytes.LastIndex(aOnOther, []byte("\n— ")):]
	forged := append(cosign(t, cp, b.signer), aLine[1:]...)
	if _, err := verifier.CheckWitnessPolicy(open(forged), policy); !errors.Is(err, verifier.ErrBadWitnessCosignature) {
		t.Fatalf("a's line from another checkpoint: %v, want ErrBadWitnessCosignature", err)
	}
	twice := cosign(t, cosign(t, cosign(t, cp, a.signer), b.signer), a.signer)
	if _, err := verifier.CheckWitnessPolicy(open(twice), policy); !errors.Is(err, verifier.ErrBadWitnessCosignature) {
		t.Fatalf("a twice: %v, want ErrBadWitnessCosignature", err)
	}
}
