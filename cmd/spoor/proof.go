package main

// spoor proof: an event's inclusion proof as a C2SP tlog-proof@v1 file
// (verifier/tlogproof.go), for tools not written here, and its check.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/verifier"
)

type proofFlags struct {
	verifyFlags
	envelope string
	sha      string
	out      string
	check    string
}

func newProofCmd() *cobra.Command {
	f := &proofFlags{}
	cmd := &cobra.Command{
		Use:   "proof (EVENT-ID --url URL (--envelope FILE | --sha256 HEX) -o FILE | --check FILE) --vkey KEY|@FILE [--policy FILE]",
		Short: "Write an event's inclusion proof as a C2SP tlog-proof@v1 file, or check one",
		Long: `spoor proof EVENT-ID asks the ledger at --url for the inclusion proof of the event
with that id whose envelope is --envelope FILE (or has the SHA-256 --sha256 HEX),
checks it with the pinned log keys (--vkey, --cosigner-vkey) and, with --policy,
the witness policy's quorum, and writes it as a c2sp.org/tlog-proof@v1 file
(-o FILE, by convention NAME.tlog-proof): the index, the inclusion proof and the
checkpoint with its witness cosignatures, and the leaf record as the extra data.
Tools not written here check it with the log's key and the covenant's witness
policy: the leaf hash is SHA-256 of 0x00 followed by the leaf record (RFC 6962),
and the leaf record's body hash is the SHA-256 of the envelope.

When the covenant has a witness policy, the ledger answers with the witnessed
checkpoint once one covers the event; before that the proof would rest on the
operator's word alone, so with --policy, spoor proof refuses it: try again
after a moment.

spoor proof --check FILE checks such a file the same way, and with --envelope
that it is about that envelope.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.check != "" {
				if len(args) != 0 {
					return &exitError{2, errors.New("give either an event id or --check FILE, not both")}
				}
				return runProofCheck(cmd, f)
			}
			if len(args) != 1 {
				return &exitError{2, errors.New("give the event id (or --check FILE)")}
			}
			return runProofFetch(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.vkey, "vkey", "", "the log's verifier key to pin (KEY or @FILE, e.g. @DIR/log.vkey)")
	fl.StringVar(&f.cosigner, "cosigner-vkey", "", "the log cosigner's verifier key to pin (KEY or @FILE); default: cosigner.vkey next to --vkey's file")
	fl.StringVar(&f.policy, "policy", "", "the witness policy (a C2SP tlog-policy file, as in the covenant's witness_policy) whose quorum the checkpoint must meet")
	fl.StringVar(&f.url, "url", "", "the ledger's base URL")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the ledger")
	fl.StringVar(&f.envelope, "envelope", "", "the event's envelope file (its SHA-256 names the event's bytes)")
	fl.StringVar(&f.sha, "sha256", "", "the SHA-256 of the event's envelope, lower-case hex (instead of --envelope)")
	fl.StringVarP(&f.out, "output", "o", "", "write the proof to this file")
	fl.StringVar(&f.check, "check", "", "check this tlog-proof file instead of fetching one")
	return cmd
}

// readPolicyFile reads and parses a tlog-policy file; "" gives nil.
func readPolicyFile(path string) (*events.WitnessPolicy, error) {
	if path == "" {
		return nil, nil
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--policy: %w", err)}
	}
	p, err := events.ParseWitnessPolicy(string(text))
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--policy %s: %w", path, err)}
	}
	return p, nil
}

// envelopeHash is the SHA-256 of --envelope's file, or --sha256.
func (f *proofFlags) envelopeHash() (string, error) {
	switch {
	case f.envelope != "" && f.sha != "":
		return "", &exitError{2, errors.New("give --envelope or --sha256, not both")}
	case f.envelope != "":
		b, err := os.ReadFile(f.envelope)
		if err != nil {
			return "", &exitError{2, fmt.Errorf("--envelope: %w", err)}
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:]), nil
	case f.sha != "":
		if b, err := hex.DecodeString(f.sha); err != nil || len(b) != 32 || strings.ToLower(f.sha) != f.sha {
			return "", &exitError{2, errors.New("--sha256 must be 64 lower-case hex characters")}
		}
		return f.sha, nil
	}
	return "", nil
}

func runProofFetch(cmd *cobra.Command, f *proofFlags, id string) error {
	if !events.ValidEventID(id) {
		return &exitError{2, errors.New("the event id must be a lower-case UUIDv7")}
	}
	if f.url == "" || f.out == "" {
		return &exitError{2, errors.New("give --url (the ledger) and -o FILE (where to write the proof)")}
	}
	sum, err := f.envelopeHash()
	if err != nil {
		return err
	}
	if sum == "" {
		return &exitError{2, errors.New("give --envelope FILE or --sha256 HEX: event ids are per party, the envelope's hash names the event")}
	}
	keys, err := pinnedLogKeys(&f.verifyFlags)
	if err != nil {
		return err
	}
	policy, err := readPolicyFile(f.policy)
	if err != nil {
		return err
	}
	q := url.Values{"event_id": {id}, "sha256": {sum}}
	client := &http.Client{Timeout: f.timeout}
	resp, err := client.Get(strings.TrimRight(f.url, "/") + "/v1/proof/inclusion?" + q.Encode())
	if err != nil {
		return &exitError{1, fmt.Errorf("couldn't ask the ledger: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &exitError{1, fmt.Errorf("couldn't read the ledger's answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &exitError{1, fmt.Errorf("the ledger answered %s: %s", resp.Status, strings.TrimSpace(string(body)))}
	}
	var ir struct {
		Index      uint64   `json:"index"`
		LeafRecord []byte   `json:"leaf_record"`
		Proof      [][]byte `json:"proof"`
		Checkpoint string   `json:"checkpoint"`
	}
	if err := json.Unmarshal(body, &ir); err != nil {
		return &exitError{1, fmt.Errorf("the ledger's answer is not an inclusion proof: %w", err)}
	}
	p := &verifier.TlogProof{Extra: ir.LeafRecord, Index: ir.Index, Proof: ir.Proof, Checkpoint: []byte(ir.Checkpoint)}
	v, err := verifier.VerifyTlogProof(p, keys, policy)
	if errors.Is(err, verifier.ErrQuorumNotMet) {
		return &exitError{1, fmt.Errorf("no checkpoint cosigned by the policy's quorum covers the event yet; try again in a moment (%w)", err)}
	}
	if err != nil {
		return &exitError{1, fmt.Errorf("the ledger's proof does not verify: %w", err)}
	}
	if hex.EncodeToString(v.LeafRecord.BodyHash[:]) != sum {
		return &exitError{1, errors.New("the ledger's proof is about another envelope than the one asked for")}
	}
	if err := durable.WriteFile(f.out, p.Marshal(), 0o644); err != nil {
		return &exitError{1, err}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s: leaf %d in the tree of size %d", f.out, p.Index, v.Checkpoint.Size)
	if v.Witnesses != nil {
		fmt.Fprintf(out, ", cosigned by %d witness(es) of the policy", len(v.Witnesses.Cosigned))
	}
	fmt.Fprintln(out)
	return nil
}

func runProofCheck(cmd *cobra.Command, f *proofFlags) error {
	keys, err := pinnedLogKeys(&f.verifyFlags)
	if err != nil {
		return err
	}
	policy, err := readPolicyFile(f.policy)
	if err != nil {
		return err
	}
	sum, err := f.envelopeHash()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(f.check)
	if err != nil {
		return &exitError{1, err}
	}
	p, err := verifier.ParseTlogProof(data)
	if err != nil {
		return &exitError{1, fmt.Errorf("%s: %w", f.check, err)}
	}
	v, err := verifier.VerifyTlogProof(p, keys, policy)
	if err != nil {
		return &exitError{1, fmt.Errorf("FAILED: %s does not verify: %w", f.check, err)}
	}
	if sum != "" && hex.EncodeToString(v.LeafRecord.BodyHash[:]) != sum {
		return &exitError{1, fmt.Errorf("FAILED: %s proves another envelope than --envelope", f.check)}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "OK: %s verifies: leaf %d (envelope SHA-256 %x) is in %s's tree of size %d\n",
		f.check, p.Index, v.LeafRecord.BodyHash, v.Checkpoint.Origin, v.Checkpoint.Size)
	if v.Witnesses != nil {
		names := make([]string, len(v.Witnesses.Cosigned))
		for i, c := range v.Witnesses.Cosigned {
			names[i] = c.Witness + " at " + c.Time.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "  witnesses: the policy's quorum cosigned: %s\n", strings.Join(names, ", "))
	} else {
		fmt.Fprintln(out, "  witnesses: no policy given (--policy): the checkpoint is checked against the log's own keys only")
	}
	return nil
}
