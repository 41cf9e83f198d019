package main

// The CLI's behaviour as a user sees it, in testscript files under
// testdata/script: each file runs spoor commands in a fresh folder and
// checks their output, exit status and the files they write. TestMain makes
// this test binary double as the spoor command (and as spoor-lines, a
// helper that writes disclosure lines for the demo covenant), so the
// scripts run the code under test without a separate build.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/synth"
)

func TestMain(m *testing.M) {
	testscript.Main(cleanupM{m}, map[string]func(){
		"spoor":       main,
		"spoor-lines": linesMain,
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// Each script that runs a ledger gets its own ports.
			for _, v := range []string{"HTTP_ADDR", "NATS_ADDR", "GATEWAY_ADDR"} {
				addr, err := pickAddr()
				if err != nil {
					return err
				}
				env.Setenv(v, addr)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready":      cmdWaitReady,
			"httpget":        cmdHTTPGet,
			"capture":        cmdCapture,
			"expand":         cmdExpand,
			"tamper-payload": cmdTamperPayload,
			"mode":           cmdMode,
		},
		RequireExplicitExec: true,
	})
}

// TestHelpMentionsFlags runs --help on every command of the tree, so a
// command added later is covered too, and checks that the help names each
// of the command's own flags.
func TestHelpMentionsFlags(t *testing.T) {
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		path = append(path, c.Name())
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(append(slices.Clone(path[1:]), "--help"))
			if err := root.Execute(); err != nil {
				t.Fatalf("spoor %s --help: %v", strings.Join(path[1:], " "), err)
			}
			help := out.String()
			if !strings.Contains(help, "Usage:") {
				t.Errorf("help has no usage line:\n%s", help)
			}
			c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
				if !f.Hidden && !strings.Contains(help, "--"+f.Name) {
					t.Errorf("help does not mention --%s:\n%s", f.Name, help)
				}
			})
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() && !strings.Contains(help, sub.Name()) {
					t.Errorf("help does not list the subcommand %s:\n%s", sub.Name(), help)
				}
			}
		})
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(path, sub)
			}
		}
	}
	walk(nil, newRootCmd())
}

// cmdWaitReady polls a URL until it answers 200: waitready URL [TIMEOUT].
// Scripts use it after starting `spoor serve` in the background.
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitready URL [TIMEOUT]")
	}
	timeout := 60 * time.Second
	if len(args) == 2 {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout = d
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get(args[0])
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not answer 200 within %s (last error: %v)", args[0], timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdHTTPGet prints the body of a GET that answers 200: httpget URL.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || (len(args) != 1 && len(args) != 2) {
		ts.Fatalf("usage: httpget URL [@TOKENFILE]")
	}
	req, err := http.NewRequest("GET", args[0], nil)
	ts.Check(err)
	if len(args) == 2 {
		// A bearer token from a file, for the FG's and the desk's routes.
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(ts.ReadFile(strings.TrimPrefix(args[1], "@"))))
	}
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	if resp.StatusCode != http.StatusOK {
		ts.Fatalf("GET %s: %s: %s", args[0], resp.Status, b)
	}
	_, err = ts.Stdout().Write(b)
	ts.Check(err)
}

// cmdCapture sets an environment variable from the last command's stdout:
// capture VAR REGEXP takes the first submatch of REGEXP (or the whole match
// when it has none).
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile(`(?m)` + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil {
		ts.Fatalf("no match for %q in stdout", args[1])
	}
	v := m[0]
	if len(m) > 1 {
		v = m[1]
	}
	ts.Setenv(args[0], v)
}

// cmdExpand writes OUT as IN with $VAR and ${VAR} replaced by the script's
// environment: expand IN OUT. Scripts use it to put generated keys into a
// covenant file.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: expand IN OUT")
	}
	out := os.Expand(ts.ReadFile(args[0]), ts.Getenv)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(out), 0o644))
}

// cmdTamperPayload changes the signed payload of a DSSE envelope without
// signing again: tamper-payload IN OUT OLD NEW replaces OLD by NEW in the
// decoded payload, so OUT is well-formed but its signature no longer fits.
func cmdTamperPayload(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: tamper-payload IN OUT OLD NEW")
	}
	// Fields in the envelope's canonical order, so that only the
	// signature is wrong.
	var env struct {
		PayloadType string          `json:"payloadType"`
		Payload     string          `json:"payload"`
		Signatures  json.RawMessage `json:"signatures"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &env))
	raw, err := base64.StdEncoding.DecodeString(env.Payload)
	ts.Check(err)
	if !bytes.Contains(raw, []byte(args[2])) {
		ts.Fatalf("the payload of %s does not contain %q", args[0], args[2])
	}
	env.Payload = base64.StdEncoding.EncodeToString(bytes.ReplaceAll(raw, []byte(args[2]), []byte(args[3])))
	b, err := json.Marshal(env)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
}

// cmdMode checks a file's permission bits: mode FILE 0600.
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o", args[0], got)
	}
}

// linesMain is the spoor-lines command of the scripts:
//
//	spoor-lines DEMO_DIR PARTY TEMPLATE [SEED]
//
// prints TEMPLATE with every line "GOOD" replaced by a valid disclosure of
// PARTY as `spoor publish` reads it (JSON, without id and salt, which the
// publisher fills in), and "GOOD origin=O" by one meant for log O. Other
// lines are printed as they are, so a script can mix in bad lines at known
// line numbers. The subject pseudonyms come from the demo's pseudonym key,
// which is generated with the demo, so a script cannot write them itself.
// The same SEED (default 1) gives the same events.
func linesMain() {
	if err := writeLines(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "spoor-lines:", err)
		os.Exit(1)
	}
}

func writeLines(args []string, w io.Writer) error {
	if len(args) != 3 && len(args) != 4 {
		return errors.New("usage: spoor-lines DEMO_DIR PARTY TEMPLATE [SEED]")
	}
	seed := uint64(1)
	if len(args) == 4 {
		var err error
		if seed, err = strconv.ParseUint(args[3], 10, 64); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	m, err := demo.Load(args[0])
	if err != nil {
		return err
	}
	party := args[1]
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, seed, 10)
	if err != nil {
		return err
	}
	tmpl, err := os.ReadFile(args[2])
	if err != nil {
		return err
	}
	var last *events.Disclosure
	for line := range strings.Lines(string(tmpl)) {
		line = strings.TrimSuffix(line, "\n")
		if line == "EDIT" {
			// The line before, under its id, with other words: what a
			// person editing an event already sent would write.
			if last == nil {
				return errors.New("EDIT needs a GOOD id line before it")
			}
			e := *last
			e.Justification += " (gewijzigd)"
			b, err := publishLineWithID(&e)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		if rest, ok := strings.CutPrefix(line, "GOOD id"); ok && rest == "" {
			d, err := nextOf(gen, party)
			if err != nil {
				return err
			}
			b, err := publishLineWithID(d)
			if err != nil {
				return err
			}
			last = d
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		rest, ok := strings.CutPrefix(line, "GOOD")
		late := rest == " late"
		if late {
			rest = ""
		}
		if !ok || (rest != "" && !strings.HasPrefix(rest, " origin=")) {
			fmt.Fprintln(w, line)
			continue
		}
		d, err := nextOf(gen, party)
		if err != nil {
			return err
		}
		if late {
			// Recorded a month after it happened: a recorded-late finding.
			d.OccurredAt = d.OccurredAt.Add(-30 * 24 * time.Hour)
		}
		if o, ok := strings.CutPrefix(rest, " origin="); ok {
			d.Origin = o
		}
		b, err := publishLine(d)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", b)
	}
	return nil
}

// nextOf returns the generator's next disclosure by party.
func nextOf(gen *synth.Generator, party string) (*events.Disclosure, error) {
	for range 10000 {
		if d, _ := gen.Next(); d.Discloser == party {
			return d, nil
		}
	}
	return nil, fmt.Errorf("the generator makes no disclosures by %q", party)
}

// publishLineWithID is publishLine keeping the event id.
func publishLineWithID(d *events.Disclosure) ([]byte, error) {
	b, err := publishLine(d)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	fields["id"] = d.ID
	return json.Marshal(fields)
}

// publishLine encodes d the way a person would hand it to spoor publish:
// every field except the id and the salt.
func publishLine(d *events.Disclosure) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	delete(fields, "id")
	delete(fields, "salt")
	return json.Marshal(fields)
}
