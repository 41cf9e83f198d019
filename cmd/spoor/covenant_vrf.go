package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// newCovenantVRFKeygenCmd makes the VRF key pair of a pseudonym key (issue
// 23): the secret goes into a new copy of the pseudonym key file, held by
// the same parties and desk; the public key is printed as the covenant's
// vrf_keys entry.
func newCovenantVRFKeygenCmd() *cobra.Command {
	var subjectKey, out string
	cmd := &cobra.Command{
		Use:   "vrf-keygen --subject-key K_v.key -o K_v-vrf.key",
		Short: "Make the VRF key pair that lets parents check an answer, for a pseudonym key",
		Long: `Make a VRF key pair (c2sp.org/vrf-r255) for the pseudonym key in --subject-key
and write a new key file (mode 0600, never over an existing file) holding the
pseudonym key and the VRF secret. Hand that file to every publishing party
(their gateway or publisher) and the privacy desk, exactly as the pseudonym key
itself: the VRF secret, like K_v, lets its holder link a child's number to the
entries about that child, so it adds nothing against the parties. The ledger
never needs it.

It prints the covenant lines with the public key. Put them in the next covenant
version (spoor covenant next, then sign): from that version on, events under the
key id carry the VRF output (wire format v2), and an inzage bundle can carry a
proof that the parent opens with the child's number (docs/dpia.md). A key id
keeps its VRF key for ever; for a new VRF key, make a new pseudonym key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subjectKey == "" || out == "" {
				return errors.New("give the pseudonym key file with --subject-key and the new file with -o")
			}
			k, err := events.LoadSubjectKey(subjectKey)
			if err != nil {
				return err
			}
			if k.VRF != nil {
				return fmt.Errorf("%s already holds a VRF secret (public key %s); a key id has one VRF key", subjectKey, k.VRF.Public())
			}
			k.VRF = aboutchild.GenerateKey()
			b, err := json.Marshal(k)
			if err != nil {
				return err
			}
			if err := writeSecretFile(out, append(b, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (pseudonym key %q with its VRF secret; share it only with the covenant's parties and the desk)\n"+
				"add to the covenant:\nvrf_keys:\n  - key_id: %s\n    vrf_public_key: %q\n", out, k.ID, k.ID, k.VRF.Public().String())
			return nil
		},
	}
	cmd.Flags().StringVar(&subjectKey, "subject-key", "", "the pseudonym key file K_v")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the new key file to write (mode 0600)")
	return cmd
}
