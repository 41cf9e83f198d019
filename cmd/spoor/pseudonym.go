package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/datadir"
)

type pseudonymFlags struct {
	data        string
	covenant    string
	subjectKeys []string
	idType      string
}

func newPseudonymCmd() *cobra.Command {
	f := &pseudonymFlags{}
	cmd := &cobra.Command{
		Use:   "pseudonym (--data DIR | --covenant FILE --subject-key FILE...) [--id-type bsn|onderwijsnummer] < bsn.txt",
		Short: "Print a child's pseudonym under each pseudonym key of the covenant; reads the BSN from standard input",
		Long: `Compute the pseudonym a disclosure carries as subject.pseudonym, so that a
system that cannot embed Spoor's code need not compute it by hand.

The BSN (or onderwijsnummer with --id-type) is read from standard input (or a
prompt without echo), never from the command line, and checked with the
elfproef; it is never printed. The answer is one line per pseudonym key the
covenant lists in subject_keys, oldest first: the key id and the pseudonym.
Every key the covenant lists needs its key file (--subject-key, repeatable);
a key file the covenant does not list is refused.

On the demo covenant, --data DIR takes the covenant and the pseudonym key from
DIR/demo-keys. The covenant's signature is not checked here: only its list of
key ids is used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPseudonym(f, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.data, "data", "", "demo: take the covenant and the pseudonym key from this ledger data folder")
	cmd.Flags().StringVar(&f.covenant, "covenant", "", "the signed covenant whose subject_keys are listed")
	cmd.Flags().StringArrayVar(&f.subjectKeys, "subject-key", nil, "pseudonym key file K_v (repeatable; one per key the covenant lists)")
	cmd.Flags().StringVar(&f.idType, "id-type", "bsn", "bsn or onderwijsnummer")
	return cmd
}

func runPseudonym(f *pseudonymFlags, in io.Reader, out, prompt io.Writer) error {
	keyIDs, keys, err := f.load()
	if err != nil {
		return err
	}
	idType := events.IDType(f.idType)
	if idType != events.IDTypeBSN && idType != events.IDTypeOnderwijsnummer {
		return fmt.Errorf("--id-type %q: must be bsn or onderwijsnummer", f.idType)
	}
	number, err := readNumber(in, prompt, f.idType)
	if err != nil {
		return err
	}
	for _, id := range keyIDs {
		p, err := events.Pseudonym(keys[id], idType, number)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s\n", id, p)
	}
	return nil
}

// load returns the covenant's pseudonym key ids, oldest first, and the key
// for each: every listed key must be given, and no other.
func (f *pseudonymFlags) load() ([]string, map[string]events.SubjectKey, error) {
	covPath, keyPaths := f.covenant, f.subjectKeys
	if f.data != "" {
		dir := datadir.Dir(f.data).DemoKeys()
		if covPath == "" {
			covPath = filepath.Join(dir, demo.SignedFile)
		}
		if len(keyPaths) == 0 {
			keyPaths = []string{filepath.Join(dir, demo.SubjectKeyFile)}
		}
	}
	if covPath == "" {
		return nil, nil, errors.New("give the covenant with --covenant (or --data DIR on the demo covenant)")
	}
	b, err := os.ReadFile(covPath)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read the covenant: %w", err)
	}
	sc, err := events.ParseSignedCovenant(b)
	if err != nil {
		return nil, nil, fmt.Errorf("covenant %s: %w", covPath, err)
	}
	listed := sc.Covenant.SubjectKeys
	keys := map[string]events.SubjectKey{}
	for _, p := range keyPaths {
		k, err := events.LoadSubjectKey(p)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(listed, k.ID) {
			return nil, nil, fmt.Errorf("pseudonym key %s (%s) is not one the covenant lists (%v)", k.ID, p, listed)
		}
		if _, dup := keys[k.ID]; dup {
			return nil, nil, fmt.Errorf("pseudonym key %s given twice", k.ID)
		}
		keys[k.ID] = k
	}
	for _, id := range listed {
		if _, ok := keys[id]; !ok {
			return nil, nil, fmt.Errorf("the covenant lists pseudonym key %s: give its key file with --subject-key", id)
		}
	}
	return listed, keys, nil
}
