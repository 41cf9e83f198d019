package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
	"github.com/spoor-ledger/spoor/verifier/report"
)

type inzageFlags struct {
	url         string
	token       string
	data        string
	subjectKeys []string
}

func (f *inzageFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "url", "http://127.0.0.1:8080", "the ledger's HTTP address")
	cmd.Flags().StringVar(&f.token, "token", "", "the desk user's bearer token (TOKEN or @FILE)")
	cmd.Flags().StringVar(&f.data, "data", "", "demo: take the keys and a demo desk token from this ledger data folder")
}

func newInzageCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inzage",
		Short: "Answer an inzageverzoek (AVG art. 15): register a request, release the answer",
		Long: `An inzageverzoek is a workflow: one desk user registers the request (who asks,
their relation to the child), a second desk user releases the answer, and both
steps are logged. The answer is a bundle with every disclosure about the child
in the desk's scope, each with an inclusion proof, verifiable offline with
'spoor verify', and optionally a readable report in Dutch.

The BSN is read from standard input (or a prompt), never from the command line.

On the demo covenant: spoor inzage request --data DIR --relation parent
(then spoor inzage release ID --data DIR -o bundle.json --html report.html).`,
	}
	cmd.AddCommand(newInzageRequestCmd(), newInzageReleaseCmd(), newInzageBundleCmd())
	return cmd
}

func newInzageRequestCmd() *cobra.Command {
	f := &inzageFlags{}
	var relation, idType, sealedOut string
	var sixteen bool
	cmd := &cobra.Command{
		Use:   "request --relation parent|guardian|young-person [--child-16-or-older] < bsn.txt",
		Short: "Register an inzageverzoek; reads the BSN from standard input and prints the request id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := f.desk("desk-1")
			if err != nil {
				return err
			}
			keys, err := f.keys()
			if err != nil {
				return err
			}
			number, err := readNumber(cmd.InOrStdin(), cmd.ErrOrStderr(), idType)
			if err != nil {
				return err
			}
			// The sealed proof needs the number, so it is made here, while it
			// is typed, and written only once the request is registered.
			sealed, err := sealedProofFor(keys, idType, number, sealedOut)
			if err != nil {
				return err
			}
			req := httpapi.InzageRegisterRequest{IDType: events.IDType(idType), Relation: relation, Child16OrOlder: sixteen}
			for _, k := range keys {
				p, err := events.Pseudonym(k, events.IDType(idType), number)
				if err != nil {
					return err
				}
				req.Pseudonyms = append(req.Pseudonyms, verifier.SubjectPseudonym{KeyID: k.ID, Pseudonym: p})
			}
			number = ""
			var st httpapi.InzageStatus
			if err := deskCall(cmd.Context(), "POST", f.url+"/v1/inzage", tok, req, &st); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", st.ID)
			if sealed != nil {
				text, _ := sealed.MarshalText()
				if err := writeSecretFile(sealedOut, append(text, '\n')); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote the sealed proof to %s: hand it to the requester with the bundle (spoor verify --bsn-stdin --sealed-proof)\n", sealedOut)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "registered by %s at %s; a second desk user releases it with: spoor inzage release %s -o bundle.json\n",
				st.RequestedBy, st.RequestedAt.Format(time.RFC3339), st.ID)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringArrayVar(&f.subjectKeys, "subject-key", nil, "pseudonym key file(s) K_v; the request looks under each (repeatable)")
	cmd.Flags().StringVar(&relation, "relation", "", "who asks: parent (with parental authority), guardian, or young-person (required)")
	cmd.Flags().BoolVar(&sixteen, "child-16-or-older", false, "the child is 16 or older (then only the young person may ask)")
	cmd.Flags().StringVar(&idType, "id-type", "bsn", "bsn or onderwijsnummer")
	cmd.Flags().StringVar(&sealedOut, "sealed-proof-out", "", "also write the sealed VRF proof for the child's number (issue 23) to this new file, for the requester's own check; needs key files with a VRF secret")
	_ = cmd.MarkFlagRequired("relation")
	return cmd
}

func newInzageReleaseCmd() *cobra.Command {
	f := &inzageFlags{}
	var out, html, consent string
	var withhold []string
	var vk reportKeys
	cmd := &cobra.Command{
		Use:   "release ID -o bundle.json [--html report.html] [--withhold INDEX:GROUND]...",
		Short: "Release the answer to a registered request (a second desk user) and write the bundle",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := f.desk("desk-2")
			if err != nil {
				return err
			}
			// A report needs the pinned keys: checked before the release,
			// which cannot be taken back, rather than after it.
			if html != "" {
				if f.data != "" {
					vk.defaults(f.data)
				}
				if _, _, err := vk.load(); err != nil {
					return fmt.Errorf("not released: %w", err)
				}
			}
			req := httpapi.InzageReleaseRequest{YoungPersonConsent: consent != "", ConsentReference: consent}
			for _, w := range withhold {
				i, ground, ok := strings.Cut(w, ":")
				n, err := strconv.ParseUint(i, 10, 64)
				if !ok || err != nil {
					return fmt.Errorf("--withhold %q: want LEAF_INDEX:GROUND, e.g. 1234:avg-23", w)
				}
				req.Withheld = append(req.Withheld, answer.Withhold{Index: n, Ground: ground})
			}
			var raw []byte
			if err := deskCall(cmd.Context(), "POST", f.url+"/v1/inzage/"+args[0]+"/release", tok, req, &raw); err != nil {
				return err
			}
			return writeBundle(cmd, f, &vk, raw, out, html)
		},
	}
	f.add(cmd)
	vk.add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "bundle file to write (required)")
	cmd.Flags().StringVar(&html, "html", "", "also write the Dutch report (after verifying the bundle with the pinned keys)")
	cmd.Flags().StringArrayVar(&withhold, "withhold", nil, "withhold a disclosure on a legal ground: LEAF_INDEX:avg-23 or LEAF_INDEX:uavg-41")
	cmd.Flags().StringVar(&consent, "young-person-consent", "", "record that the young person (16 or over by the disclosures) consented to this answer going to the parent or guardian: "+
		"the reference of where the consent is kept (a case or document number, never a BSN); without it such a release is refused (young_person_16_plus)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func newInzageBundleCmd() *cobra.Command {
	f := &inzageFlags{}
	var out, html string
	var vk reportKeys
	cmd := &cobra.Command{
		Use:   "bundle ID -o bundle.json [--html report.html]",
		Short: "Download the bundle of a released request again: the very bytes handed out at release",
		Long: `spoor inzage bundle ID downloads the answer to a released request again, for
either desk user of the scope: the same bytes as at release (the bundle is
kept), proven by the answer entry logged at release. While no checkpoint
covers that entry yet (with a witness policy: while the witnesses are away) the
ledger answers 503: try again later.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := f.desk("desk-1")
			if err != nil {
				return err
			}
			var raw []byte
			if err := deskCall(cmd.Context(), "GET", f.url+"/v1/inzage/"+args[0]+"/bundle", tok, nil, &raw); err != nil {
				return err
			}
			return writeBundle(cmd, f, &vk, raw, out, html)
		},
	}
	f.add(cmd)
	vk.add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "bundle file to write (required)")
	cmd.Flags().StringVar(&html, "html", "", "also write the Dutch report (after verifying the bundle with the pinned keys)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// writeBundle writes a bundle the ledger handed out to out, warns of what
// looks like a BSN in it (judged here, from the bundle itself, whatever the
// server says), and writes the Dutch report to html when asked.
func writeBundle(cmd *cobra.Command, f *inzageFlags, vk *reportKeys, raw []byte, out, html string) error {
	if err := os.WriteFile(out, raw, 0o600); err != nil {
		return fmt.Errorf("couldn't write the bundle: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
	if warning := httpapi.PossibleBSNWarning(raw); warning != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING: "+warning)
	}
	if html == "" {
		return nil
	}
	if f.data != "" {
		vk.defaults(f.data)
	}
	return writeReport(cmd, raw, vk, html, out)
}

// desk returns the bearer token: --token, or the demo desk user's token.
func (f *inzageFlags) desk(demoUser string) (string, error) {
	if f.token != "" {
		return readKeyArg(f.token)
	}
	if f.data != "" {
		b, err := os.ReadFile(datadir.Dir(f.data).DemoDeskToken(demoUser))
		if err != nil {
			return "", fmt.Errorf("no --token, and no demo desk token in %s: %w", f.data, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("give the desk user's token with --token (or --data DIR on the demo covenant)")
}

func (f *inzageFlags) keys() ([]events.SubjectKey, error) {
	paths := f.subjectKeys
	if len(paths) == 0 && f.data != "" {
		paths = []string{filepath.Join(datadir.Dir(f.data).DemoKeys(), demo.SubjectKeyFile)}
	}
	if len(paths) == 0 {
		return nil, errors.New("give the pseudonym key file(s) with --subject-key")
	}
	var out []events.SubjectKey
	for _, p := range paths {
		k, err := events.LoadSubjectKey(p)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// sealedProofFor makes the sealed proof of the number under the VRF secret of
// every pseudonym key that has one, when out is set; nil when it is not.
func sealedProofFor(keys []events.SubjectKey, idType, number, out string) (*aboutchild.SealedProof, error) {
	if out == "" {
		return nil, nil
	}
	var vrfKeys []*aboutchild.SecretKey
	for _, k := range keys {
		if k.VRF != nil {
			vrfKeys = append(vrfKeys, k.VRF)
		}
	}
	if len(vrfKeys) == 0 {
		return nil, errors.New("--sealed-proof-out: no pseudonym key file holds a VRF secret (spoor covenant vrf-keygen)")
	}
	sp, err := aboutchild.SealFor(nil, idType, number, aboutchild.DefaultParams, vrfKeys)
	if err != nil {
		return nil, fmt.Errorf("couldn't seal the VRF proof: %w", err)
	}
	return sp, nil
}

// readNumber reads one BSN or onderwijsnummer from in: without echo when in
// is a terminal. The number is checked here and never printed.
func readNumber(in io.Reader, prompt io.Writer, idType string) (string, error) {
	var line string
	if fh, ok := in.(*os.File); ok && term.IsTerminal(int(fh.Fd())) {
		fmt.Fprintf(prompt, "%s of the child (not shown): ", strings.ToUpper(idType))
		b, err := term.ReadPassword(int(fh.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("couldn't read the number: %w", err)
		}
		line = string(b)
	} else {
		sc := bufio.NewScanner(io.LimitReader(in, 1024))
		if sc.Scan() {
			line = sc.Text()
		}
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("couldn't read the number from standard input: %w", err)
		}
	}
	n := strings.TrimSpace(line)
	if n == "" {
		return "", errors.New("no number on standard input (give the BSN on standard input, never on the command line)")
	}
	if err := events.CheckNumber(events.IDType(idType), n); err != nil {
		return "", err
	}
	return n, nil
}

// deskCall sends a JSON request with the bearer token and decodes the
// answer, turning API errors into messages.
func deskCall(ctx context.Context, method, url, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("couldn't reach the ledger: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("couldn't read the ledger's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("the ledger refused (%s): %s", e.Code, e.Message)
		}
		return fmt.Errorf("the ledger answered %s", resp.Status)
	}
	if raw, ok := out.(*[]byte); ok {
		// A bundle is kept byte for byte as the ledger sent it.
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// reportKeys are the pinned keys a desk uses to verify a bundle before it
// writes the report: the report shows only what verified.
type reportKeys struct {
	vkey, cosigner, admin string
}

func (k *reportKeys) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.vkey, "vkey", "", "the log's verifier key (KEY or @FILE), for --html")
	cmd.Flags().StringVar(&k.cosigner, "cosigner-vkey", "", "the log cosigner's verifier key (KEY or @FILE), for --html")
	cmd.Flags().StringVar(&k.admin, "admin", "", "the covenant administrator's verifier key (KEY or @FILE), for --html")
}

// load reads and parses the pinned keys: the log's and cosigner's, and the
// administrator's verifier key.
func (k *reportKeys) load() (*verifier.LogKeys, string, error) {
	if k.vkey == "" || k.cosigner == "" || k.admin == "" {
		return nil, "", errors.New("--html needs the pinned keys: --vkey, --cosigner-vkey and --admin (or --data DIR)")
	}
	var vals [3]string
	for i, a := range []string{k.vkey, k.cosigner, k.admin} {
		v, err := readKeyArg(a)
		if err != nil {
			return nil, "", err
		}
		vals[i] = v
	}
	keys, err := verifier.ParseLogKeys(vals[0], vals[1])
	if err != nil {
		return nil, "", err
	}
	return keys, vals[2], nil
}

// defaults fills unset keys from a ledger data folder on the demo covenant.
func (k *reportKeys) defaults(dir string) {
	if k.vkey == "" {
		k.vkey = "@" + datadir.Dir(dir).LogVkey()
	}
	if k.cosigner == "" {
		k.cosigner = "@" + datadir.Dir(dir).CosignerVkey()
	}
	if k.admin == "" {
		k.admin = "@" + filepath.Join(datadir.Dir(dir).DemoKeys(), demo.AdminPubFile)
	}
}

// writeReport verifies bundle with the pinned keys and writes the Dutch
// report to path; the report names bundleFile, the file the bundle was
// written to, so that the parent finds the file it speaks of.
func writeReport(cmd *cobra.Command, bundle []byte, k *reportKeys, path, bundleFile string) error {
	keys, admin, err := k.load()
	if err != nil {
		return err
	}
	vb, err := verifier.VerifyBundle(bundle, keys, admin)
	if err != nil {
		return fmt.Errorf("the bundle does not verify; no report written: %w", err)
	}
	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb, report.WithBundleFile(bundleFile)); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("couldn't write the report: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (verified: %d disclosures)\n", path, len(vb.Disclosures))
	return nil
}
