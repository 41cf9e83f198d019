package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
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
