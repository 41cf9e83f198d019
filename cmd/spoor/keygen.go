package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/ledger/notify"
	"github.com/spoor-ledger/spoor/verifier/webhook"
)

func newKeygenCmd(g *globalFlags) *cobra.Command {
	var party, subjectKey, admin, out string
	var notifyKey bool
	cmd := &cobra.Command{
		Use:   "keygen (--party ID | --subject-key ID | --admin NAME | --notify) -o FILE",
		Short: "Make a party signing key, a pseudonym key, a covenant administrator key or the ledger's notification key",
		Long: `Make a new key and write it to FILE with mode 0600 (an existing file is never
overwritten).

  --party ID        an organisation's Ed25519 signing key and salt secret; prints
                    the public key to put in the covenant under parties[].keys
  --subject-key ID  a pseudonym key K_v (32 random bytes) that every party and
                    the ledger hold; the covenant lists its id under subject_keys
  --admin NAME      a covenant administrator key (signed-note format); writes
                    FILE (private) and FILE.pub (the verifier key to pin)
  --notify          the ledger's webhook signing key (Ed25519); prints the public
                    key to put in the covenant as notification_key; serve reads
                    FILE with --notify-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := 0
			for _, v := range []string{party, subjectKey, admin} {
				if v != "" {
					set++
				}
			}
			if notifyKey {
				set++
			}
			if set != 1 {
				return errors.New("give exactly one of --party, --subject-key, --admin or --notify")
			}
			if out == "" {
				return errors.New("give the output file with -o")
			}
			w := cmd.OutOrStdout()
			switch {
			case notifyKey:
				b, pub, err := notify.GenerateKey()
				if err != nil {
					return err
				}
				if err := writeSecretFile(out, b); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s\nkey id:           %s\nnotification_key: %s\n", out, webhook.KeyID(pub), base64.StdEncoding.EncodeToString(pub))
			case party != "":
				k, err := events.GeneratePartyKey(party)
				if err != nil {
					return err
				}
				b, err := json.Marshal(k)
				if err != nil {
					return err
				}
				if err := writeSecretFile(out, append(b, '\n')); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s\nparty:      %s\nkey id:     %s\npublic key: %s\n", out, party, k.KeyID(), pubB64(k))
			case subjectKey != "":
				k, err := events.GenerateSubjectKey(subjectKey)
				if err != nil {
					return err
				}
				b, err := json.Marshal(k)
				if err != nil {
					return err
				}
				if err := writeSecretFile(out, append(b, '\n')); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s (pseudonym key %q; share it only with the covenant's parties and the ledger)\n", out, subjectKey)
			default:
				skey, vkey, err := note.GenerateKey(nil, admin)
				if err != nil {
					return fmt.Errorf("couldn't generate administrator key: %w", err)
				}
				if err := writeSecretFile(out, []byte(skey+"\n")); err != nil {
					return err
				}
				if err := durable.WriteFile(out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
					return fmt.Errorf("couldn't write %s.pub: %w", filepath.Base(out), err)
				}
				fmt.Fprintf(w, "wrote %s and %s.pub\nverifier key: %s\n", out, out, vkey)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&party, "party", "", "make a signing key for this party id")
	cmd.Flags().StringVar(&subjectKey, "subject-key", "", "make a pseudonym key with this id")
	cmd.Flags().StringVar(&admin, "admin", "", "make a covenant administrator key with this name")
	cmd.Flags().BoolVar(&notifyKey, "notify", false, "make the ledger's notification key (webhook signatures)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (mode 0600)")
	return cmd
}

// writeSecretFile writes a key or token file: mode 0600, never over an
// existing file, and whole or not at all after a crash.
func writeSecretFile(path string, b []byte) error {
	if err := durable.WriteNewFile(path, b, 0o600); err != nil {
		return fmt.Errorf("couldn't create key file: %w", err)
	}
	return nil
}
