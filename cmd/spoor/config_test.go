package main

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exampleConfig is the example configuration in deploy/.
const exampleConfig = "../../deploy/spoor.yaml"

// serveCmdForTest returns the serve command of a fresh command tree with
// its run replaced: executing it parses the flags and reads --config (the
// real PreRunE) and checks the required flags, but starts nothing. The
// flags' values are then serve's settings.
func serveCmdForTest(t *testing.T) (root, serve *cobra.Command) {
	t.Helper()
	root = newRootCmd()
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serve.RunE = func(*cobra.Command, []string) error { return nil }
	return root, serve
}

// runServeFlags executes spoor serve with args and returns its flags.
func runServeFlags(t *testing.T, args ...string) (*pflag.FlagSet, error) {
	t.Helper()
	root, serve := serveCmdForTest(t)
	root.SetArgs(append([]string{"serve"}, args...))
	err := root.Execute()
	return serve.Flags(), err
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spoor.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigCoversServeFlags: every flag of spoor serve (its own and the
// global ones, apart from --config and --help) has a field in Config and
// every field a flag, of the same type, and every field has a doc comment
// that says its default and whether it is optional. The keys follow one
// rule: the flag's name with "_" for "-", plus "_file" for a secret's path.
func TestConfigCoversServeFlags(t *testing.T) {
	_, serve := serveCmdForTest(t)
	flags := map[string]*pflag.Flag{}
	add := func(f *pflag.Flag) {
		if f.Name != "config" && f.Name != "help" {
			flags[f.Name] = f
		}
	}
	serve.LocalFlags().VisitAll(add)
	serve.InheritedFlags().VisitAll(add)

	docs := configFieldDocs(t)
	ct := reflect.TypeFor[Config]()
	seen := map[string]bool{}
	for _, cf := range configFields() {
		sf := ct.Field(cf.index)
		f, ok := flags[cf.flag]
		if !ok {
			t.Errorf("Config.%s names flag --%s, which spoor serve does not have", sf.Name, cf.flag)
			continue
		}
		if seen[cf.flag] {
			t.Errorf("flag --%s has two fields in Config", cf.flag)
		}
		seen[cf.flag] = true
		want := map[string]reflect.Type{
			"string": reflect.TypeFor[string](), "bool": reflect.TypeFor[bool](), "int": reflect.TypeFor[int](),
			"int64": reflect.TypeFor[int64](), "duration": reflect.TypeFor[time.Duration](),
		}[f.Value.Type()]
		if sf.Type != want {
			t.Errorf("Config.%s is a %s, but --%s is a %s", sf.Name, sf.Type, cf.flag, f.Value.Type())
		}
		base := strings.ReplaceAll(cf.flag, "-", "_")
		if cf.key != base && cf.key != base+"_file" {
			t.Errorf("Config.%s has key %q; want %q (or %q for the path of a secret)", sf.Name, cf.key, base, base+"_file")
		}
		doc := docs[sf.Name]
		switch {
		case doc == "":
			t.Errorf("Config.%s has no doc comment", sf.Name)
		case !strings.Contains(doc, "default"):
			t.Errorf("Config.%s: its doc does not say its default: %q", sf.Name, doc)
		case !strings.Contains(doc, "Optional") && !strings.Contains(doc, "Required"):
			t.Errorf("Config.%s: its doc does not say whether it is optional: %q", sf.Name, doc)
		}
	}
	for name := range flags {
		if !seen[name] {
			t.Errorf("flag --%s of spoor serve has no field in Config", name)
		}
	}
}

// configFieldDocs returns the doc comment of each field of Config, read
// from config.go: the comments are the operator's reference.
func configFieldDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			for _, name := range fld.Names {
				docs[name.Name] = strings.TrimSpace(fld.Doc.Text())
			}
		}
		return false
	})
	if len(docs) == 0 {
		t.Fatal("config.go has no struct Config")
	}
	return docs
}

// TestConfigExample: deploy/spoor.yaml gives every key, each at its
// flag's default, so that serve reads it and runs as without it.
func TestConfigExample(t *testing.T) {
	_, lines, err := loadConfig(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cf := range configFields() {
		if _, ok := lines[cf.key]; !ok {
			t.Errorf("%s does not give %s", exampleConfig, cf.key)
		}
	}
	fl, err := runServeFlags(t, "--config", exampleConfig, "--data", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, cf := range configFields() {
		f := fl.Lookup(cf.flag)
		if cf.flag == "data" {
			continue
		}
		if f.Value.String() != f.DefValue {
			t.Errorf("%s line %d: %s makes --%s %s; its default is %s", exampleConfig, lines[cf.key], cf.key, cf.flag, f.Value.String(), f.DefValue)
		}
	}
}

// TestConfigPrecedence: a flag on the command line wins over the file, the
// file over the default, and a key left out keeps the default; --data may
// come from the file alone, and without it from neither serve refuses as
// before.
func TestConfigPrecedence(t *testing.T) {
	p := writeConfig(t, `data: /from/file
http: "127.0.0.1:9001"
max_batch: 100
batch_age: 5ms
no_encryption: true
log_level: debug
tls_key_file: /etc/spoor/tls.key
`)
	fl, err := runServeFlags(t, "--config", p, "--http", "127.0.0.1:9002", "--log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"data":          "/from/file",     // the file; --data not given
		"http":          "127.0.0.1:9002", // the flag over the file
		"max-batch":     "100",            // the file over the default
		"batch-age":     "5ms",
		"no-encryption": "true",
		"log-level":     "warn",               // a global flag over the file
		"tls-key":       "/etc/spoor/tls.key", // a *_file key sets its flag
		"idle-cosign":   "1m0s",               // left out: the default
		"nats-listen":   "127.0.0.1:4222",
	} {
		if got := fl.Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s is %q; want %q", flag, got, want)
		}
	}
	// A setting from the file does not count as given on the command line
	// (GOMEMLIMIT still wins over memory_limit_mib).
	if fl.Changed("max-batch") {
		t.Error("max_batch from the file marks --max-batch as given")
	}

	fl, err = runServeFlags(t, "--config", p, "--data", "/from/flag")
	if err != nil || fl.Lookup("data").Value.String() != "/from/flag" {
		t.Fatalf("--data over the file: %v, data %q", err, fl.Lookup("data").Value)
	}
	if _, err := runServeFlags(t, "--config", writeConfig(t, "max_batch: 10\n")); err == nil || err.Error() != `required flag(s) "data" not set` {
		t.Fatalf("no data in the file or on the command line: %v", err)
	}
	if _, err := runServeFlags(t, "--config", writeConfig(t, "# nothing set\n"), "--data", "d"); err != nil {
		t.Fatalf("a file without settings: %v", err)
	}
}

// TestConfigRefused: an unknown key, a value of the wrong type and a
// password in the NATS URL stop serve at start, naming the line; so does a
// file that is not there.
func TestConfigRefused(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key":     {"data: d\nhttp: \"127.0.0.1:9001\"\nmax_batchh: 10\n", `line 3: unknown key "max_batchh"`},
		"flag spelling":   {"max-batch: 10\n", `line 1: unknown key "max-batch"`},
		"secret inline":   {"data: d\ntls_key: /k\n", `line 2: unknown key "tls_key"`},
		"nested":          {"http:\n  addr: x\n", "line 2"},
		"wrong type":      {"data: d\n\nmax_batch: many\n", "line 3"},
		"int duration":    {"batch_age: 5\n", "line 1"},
		"not a mapping":   {"- data\n", "line 1"},
		"no value":        {"data: d\nhttp:\n", "line 2: http has no value"},
		"two documents":   {"data: d\n---\ndata: e\n", "more than one YAML document"},
		"password in url": {"data: d\nnats: tls://ledger:secret@nats-1:4222,tls://nats-2:4222\n", "line 2: the nats URL holds a password"},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			_, err := runServeFlags(t, "--config", p, "--data", "d")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v; want an error naming %s and %q", err, p, tc.want)
			}
		})
	}
	if _, err := runServeFlags(t, "--config", filepath.Join(t.TempDir(), "missing.yaml"), "--data", "d"); err == nil {
		t.Fatal("a missing configuration file was accepted")
	}
}

// TestServeExampleConfig: spoor serve runs on deploy/spoor.yaml, with
// flags for what a test must choose (the folder, free ports), and stops
// cleanly.
func TestServeExampleConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a ledger in-process; skipped with -short")
	}
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	httpAddr, opsAddr := freeAddr(t), freeAddr(t)
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--config", exampleConfig, "--data", t.TempDir(),
		"--http", httpAddr, "--nats-listen", freeAddr(t), "--ops-http", opsAddr, "--log-level", "error"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := hc.Get("http://" + opsAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("spoor serve --config %s stopped before it was ready: %v", exampleConfig, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("spoor serve --config was not ready within 60s")
		}
	}
	if resp, err := hc.Get("http://" + httpAddr + "/checkpoint"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /checkpoint: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("spoor serve did not stop cleanly: %v", err)
	}
}
