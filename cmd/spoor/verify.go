package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
	"github.com/spoor-ledger/spoor/verifier/report"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

type verifyFlags struct {
	vkey        string
	cosigner    string
	admin       string
	html        string
	consistency string
	url         string
	timeout     time.Duration
	policy      string
	bsnStdin    bool
	idType      string
	sealedProof string
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use: "verify BUNDLE --vkey KEY|@FILE --admin KEY|@FILE [--cosigner-vkey KEY|@FILE] [--html FILE]\n" +
			"  spoor verify --consistency OLD_CHECKPOINT --url URL --vkey KEY|@FILE [--cosigner-vkey KEY|@FILE]",
		Short: "Check an inzage bundle offline, or that today's log extends a kept checkpoint",
		Long: `spoor verify BUNDLE checks an inzage bundle offline, with nothing but the bundle
and the keys you pin: the log's key (--vkey), the log's cosigner key
(--cosigner-vkey; by default cosigner.vkey next to an @FILE given to --vkey) and
the covenant administrator's key (--admin). It checks the checkpoint's
signature and cosignature, the covenant versions and their chain, every
envelope's signature against the key in force under the covenant version its
leaf names, every leaf against its envelope, every inclusion proof, and that
every disclosure is about the bundle's child, and, when the covenant in force
at the checkpoint has a witness policy, that the policy's quorum of independent
witnesses cosigned the checkpoint. It exits 0 only when all of it holds, and
otherwise names each check that failed and where. A bundle whose covenant has no
witness policy (and every bundle made before witnesses existed) verifies as
before and is reported as not independently confirmed. --policy FILE adds a
witness policy of your own (a C2SP tlog-policy text): it can only make the
check stricter.

A bundle must not vouch for its own keys: take them from a source you trust (the
FG or the covenant's website publishes log.vkey, cosigner.vkey and admin.pub),
never from the bundle. verify prints the fingerprints of the keys it trusted, so
that you can compare them with the published ones.

With --html FILE it also writes the Dutch report, rendered from what verified.

spoor verify --consistency OLD --url URL fetches the log's current checkpoint,
verifies it with the pinned keys, computes the consistency proof from the log's
public tiles (not from the server's proof endpoint) and checks that today's log
extends the kept checkpoint OLD: a signed checkpoint file, or a bundle whose
checkpoint you kept. A log that was rolled back or forked fails.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.consistency != "" {
				if len(args) != 0 {
					return &exitError{2, errors.New("give either a bundle or --consistency, not both")}
				}
				return runVerifyConsistency(cmd, f)
			}
			if len(args) != 1 {
				return &exitError{2, errors.New("give the bundle to check: spoor verify bundle.json --vkey @log.vkey --admin @admin.pub")}
			}
			return runVerifyBundle(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.vkey, "vkey", "", "the log's verifier key to pin (KEY or @FILE, e.g. @DIR/log.vkey)")
	fl.StringVar(&f.cosigner, "cosigner-vkey", "", "the log cosigner's verifier key to pin (KEY or @FILE); default: cosigner.vkey next to --vkey's file")
	fl.StringVar(&f.admin, "admin", "", "the covenant administrator's verifier key to pin (KEY or @FILE, e.g. @admin.pub)")
	fl.StringVar(&f.html, "html", "", "also write the Dutch report of the verified bundle to this file")
	fl.StringVar(&f.consistency, "consistency", "", "check that the log at --url extends this kept checkpoint (a checkpoint file or a bundle)")
	fl.StringVar(&f.url, "url", "", "the log's base URL, for --consistency")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "for --consistency: how long to wait for the log")
	fl.BoolVar(&f.bsnStdin, "bsn-stdin", false, "check that the bundle is about your child: read the child's number from standard input (typed without echo at a terminal), never from the command line")
	fl.StringVar(&f.idType, "id-type", "bsn", "with --bsn-stdin: the number's type, bsn or onderwijsnummer")
	fl.StringVar(&f.sealedProof, "sealed-proof", "", "with --bsn-stdin: the bundle's sealed VRF proof (base64 text), until bundles carry it themselves")
	fl.StringVar(&f.policy, "policy", "", "also require this witness policy (a C2SP tlog-policy file) of the bundle's checkpoint, besides the covenant's own")
	return cmd
}

// pinnedLogKeys resolves --vkey and --cosigner-vkey. It refuses to run
// without --vkey: the keys must come from the user, not from what is
// checked.
func pinnedLogKeys(f *verifyFlags) (*verifier.LogKeys, error) {
	logV, cosV, err := pinnedLogKeyTexts(f)
	if err != nil {
		return nil, err
	}
	keys, err := verifier.ParseLogKeys(logV, cosV)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("the pinned keys: %w", err)}
	}
	return keys, nil
}

// pinnedLogKeyTexts resolves --vkey and --cosigner-vkey to the keys' texts
// (spoor verify-page writes them into its page), unchecked.
func pinnedLogKeyTexts(f *verifyFlags) (logV, cosV string, err error) {
	if f.vkey == "" {
		return "", "", &exitError{2, errors.New("refusing to verify without a pinned log key: give --vkey KEY|@FILE " +
			"(a bundle or a server must not vouch for its own keys; take log.vkey from the FG or the covenant's website)")}
	}
	cosigner := f.cosigner
	if cosigner == "" {
		path, ok := strings.CutPrefix(f.vkey, "@")
		if !ok {
			return "", "", &exitError{2, errors.New("give the cosigner key with --cosigner-vkey KEY|@FILE (only an @FILE --vkey has a cosigner.vkey next to it)")}
		}
		sibling := datadir.Dir(filepath.Dir(path)).CosignerVkey()
		if _, err := os.Stat(sibling); err != nil {
			return "", "", &exitError{2, fmt.Errorf("give the cosigner key with --cosigner-vkey KEY|@FILE (there is no %s)", sibling)}
		}
		cosigner = "@" + sibling
	}
	logV, err = readKeyArg(f.vkey)
	if err != nil {
		return "", "", &exitError{2, fmt.Errorf("--vkey: %w", err)}
	}
	cosV, err = readKeyArg(cosigner)
	if err != nil {
		return "", "", &exitError{2, fmt.Errorf("--cosigner-vkey: %w", err)}
	}
	return logV, cosV, nil
}

func runVerifyBundle(cmd *cobra.Command, f *verifyFlags, path string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	keys, err := pinnedLogKeys(f)
	if err != nil {
		return err
	}
	if f.admin == "" {
		return &exitError{2, errors.New("refusing to verify without a pinned administrator key: give --admin KEY|@FILE " +
			"(the covenant administrator's admin.pub, from the FG or the covenant's website)")}
	}
	admin, err := readKeyArg(f.admin)
	if err != nil {
		return &exitError{2, fmt.Errorf("--admin: %w", err)}
	}
	if verifier.KeyFingerprint(admin) == "" {
		return &exitError{2, errors.New("--admin is not a verifier key (name+hash+key)")}
	}
	fmt.Fprintf(out, "trusted log key:           %s\n", verifier.NoteKeyFingerprint(keys.Log))
	fmt.Fprintf(out, "trusted cosigner key:      %s\n", verifier.NoteKeyFingerprint(keys.Cosigner))
	fmt.Fprintf(out, "trusted administrator key: %s\n", verifier.KeyFingerprint(admin))

	data, err := readBundleFile(path)
	if err != nil {
		return &exitError{1, err}
	}
	var sealed *aboutchild.SealedProof
	if f.bsnStdin {
		if f.sealedProof == "" {
			return &exitError{2, errors.New("--bsn-stdin needs the bundle's sealed proof (--sealed-proof FILE)")}
		}
		if sealed, err = readSealedProof(f.sealedProof); err != nil {
			return &exitError{1, err}
		}
	}
	var opts []verifier.VerifyOption
	policy, err := readPolicyFile(f.policy)
	if err != nil {
		return err
	}
	if policy != nil {
		opts = append(opts, verifier.WithPolicy(policy))
	}
	vb, err := verifier.VerifyBundle(data, keys, admin, opts...)
	if err != nil {
		var es verifier.BundleErrors
		if errors.As(err, &es) {
			fmt.Fprintf(errOut, "FAILED: %s does not verify:\n", path)
			for _, e := range es {
				fmt.Fprintf(errOut, "  %s\n", e)
			}
			return &exitError{1, fmt.Errorf("%s does not verify (%d problem(s), listed above)", path, len(es))}
		}
		return &exitError{1, fmt.Errorf("%s: %w", path, err)}
	}

	cp := vb.Checkpoint
	fmt.Fprintf(out, "OK: %s verifies.\n", path)
	fmt.Fprintf(out, "  disclosures: %d, withheld: %d, erased: %d\n", len(vb.Disclosures), len(vb.Withheld), len(vb.Erased))
	versions := "version 1"
	if n := vb.Covenant().Version; n > 1 {
		versions = fmt.Sprintf("versions 1 to %d", n)
	}
	fmt.Fprintf(out, "  covenant:    %s, the chain signed from the pinned administrator key on\n", versions)
	fmt.Fprintf(out, "  checkpoint:  %s, tree size %d, root %s\n", cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Hash[:]))
	if a := vb.Answer; a != nil {
		fmt.Fprintf(out, "  answer:      logged at leaf %d (%s): the request, scope and lists of this bundle are what it says\n", a.Index, a.IntegratedAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(out, "  answer:      not on the record (a %s bundle): its request and scope are not proven\n", vb.Bundle.Format)
	}
	if wc := vb.Witnesses; wc != nil {
		names := make([]string, len(wc.Cosigned))
		for i, cs := range wc.Cosigned {
			names[i] = cs.Witness + " at " + cs.Time.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "  witnesses:   the policy's quorum cosigned: %s\n", strings.Join(names, ", "))
		fmt.Fprintf(out, "  time:        every entry was in the log by %s at the latest (the witnesses' word)\n", wc.LatestAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(out, "  time:        cosigned %s by the log itself (its own statement; no independent witness: niet onafhankelijk bevestigd)\n", cp.CosignedAt.Format(time.RFC3339))
	}
	if sealed != nil {
		number, err := readNumber(cmd.InOrStdin(), errOut, f.idType)
		if err != nil {
			return &exitError{1, err}
		}
		res, err := vb.CheckAboutChild(sealed, f.idType, number)
		if err != nil {
			fmt.Fprintf(errOut, "FAILED: %s is not shown to be about this child: %s\n", path, err)
			return &exitError{1, errors.New("the bundle is not about the child whose number was given")}
		}
		fmt.Fprintf(out, "  about this child: %d disclosure(s) carry the number's VRF output, checked with the covenant's VRF key\n", res.Checked)
		if res.NotCheckable > 0 {
			fmt.Fprintf(out, "  not checkable:    %d disclosure(s): %s\n", res.NotCheckable, aboutchild.NotCheckableNL)
		}
	}
	if c := vb.Completeness; c != nil {
		fmt.Fprintf(out, "  complete:    for the log before leaf %d, by %s under key(s) %s, for %d organisation(s): %s (index head at leaf %d)\n",
			c.TreeSize, c.IDType, strings.Join(c.KeyIDs, ", "), len(c.Parties), strings.Join(c.Parties, ", "), c.HeadIndex)
		if len(c.NotInScope) > 0 {
			fmt.Fprintf(out, "  not in scope: %s\n", strings.Join(c.NotInScope, ", "))
		}
		if len(c.Later) > 0 {
			fmt.Fprintf(out, "  later:       %d entries about the child were logged after the answer was made\n", len(c.Later))
		}
		if c.ErasuresFrom > 0 {
			fmt.Fprintf(out, "  erasures:    entries erased before leaf %d (before the index was built) are in no list\n", c.ErasuresFrom)
		}
		fmt.Fprintf(out, "Not proven: disclosures an organisation never reported (the FG's audit and the parties' receipts check that).\n")
	} else {
		fmt.Fprintf(out, "Not proven: that the bundle is complete, volledigheid niet bewezen (a %s bundle; the FG's audit and the parties' receipts check that).\n", vb.Bundle.Format)
	}
	fmt.Fprintf(out, "Keep the bundle: spoor verify --consistency %s --url URL later shows the log still holds it.\n", path)

	if f.html != "" {
		var buf bytes.Buffer
		if err := report.WriteInzage(&buf, vb, report.WithBundleFile(path)); err != nil {
			return &exitError{1, err}
		}
		// The report describes a child: readable by its owner only.
		if err := os.WriteFile(f.html, buf.Bytes(), 0o600); err != nil {
			return &exitError{1, fmt.Errorf("couldn't write the report: %w", err)}
		}
		fmt.Fprintf(out, "wrote the report to %s\n", f.html)
	}
	return nil
}

// readBundleFile reads a bundle, refusing one over the size limit before
// reading it all.
func readBundleFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the bundle: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, verifier.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the bundle: %w", err)
	}
	if len(data) > verifier.MaxBundleSize {
		return nil, fmt.Errorf("%s is larger than a bundle can be (%d bytes)", path, verifier.MaxBundleSize)
	}
	return data, nil
}

func runVerifyConsistency(cmd *cobra.Command, f *verifyFlags) error {
	out := cmd.OutOrStdout()
	if f.url == "" {
		return &exitError{2, errors.New("--consistency needs the log's --url")}
	}
	keys, err := pinnedLogKeys(f)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "trusted log key:           %s\n", verifier.NoteKeyFingerprint(keys.Log))
	fmt.Fprintf(out, "trusted cosigner key:      %s\n", verifier.NoteKeyFingerprint(keys.Cosigner))

	raw, err := readBundleFile(f.consistency)
	if err != nil {
		return &exitError{1, err}
	}
	// A kept bundle carries its checkpoint; a checkpoint file is one.
	note := raw
	if b, err := verifier.ParseBundle(raw); err == nil {
		note = []byte(b.Checkpoint)
	}
	old, err := verifier.OpenCheckpoint(note, keys)
	if err != nil {
		return &exitError{1, fmt.Errorf("the kept checkpoint %s does not verify with the pinned keys: %w", f.consistency, err)}
	}

	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	client := &tlogclient.Client{URL: f.url, Keys: keys, HTTP: &http.Client{Timeout: 30 * time.Second}}
	cur, err := client.Checkpoint(ctx)
	if err != nil {
		return &exitError{1, fmt.Errorf("the log's current checkpoint: %w", err)}
	}
	if cur.Size < old.Size {
		return &exitError{1, fmt.Errorf("ROLLBACK: the log at %s has %d entries, fewer than the %d of the kept checkpoint: it does not extend it", f.url, cur.Size, old.Size)}
	}
	proof, err := client.ProveConsistency(ctx, old.Size, cur.Tree())
	if err != nil {
		return &exitError{1, fmt.Errorf("couldn't compute the consistency proof from the log's tiles: %w", err)}
	}
	if err := verifier.VerifyConsistency(old.Size, cur.Size, old.Hash, cur.Hash, proof); err != nil {
		// The proof's own message dumps roots as byte lists; the sizes
		// and the verdict are what a reader needs.
		return &exitError{1, fmt.Errorf("FORK: today's log at %s (size %d) does not extend the kept checkpoint (size %d): %w",
			f.url, cur.Size, old.Size, verifier.ErrProof)}
	}
	fmt.Fprintf(out, "OK: today's log extends the kept checkpoint.\n")
	fmt.Fprintf(out, "  kept:  tree size %d, root %s, cosigned %s\n", old.Size, base64.StdEncoding.EncodeToString(old.Hash[:]), old.CosignedAt.Format(time.RFC3339))
	fmt.Fprintf(out, "  today: tree size %d, root %s, cosigned %s\n", cur.Size, base64.StdEncoding.EncodeToString(cur.Hash[:]), cur.CosignedAt.Format(time.RFC3339))
	return nil
}
