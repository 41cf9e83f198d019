package deploy

// Docker, Kubernetes and a real three-host cluster are not available in CI,
// so these tests check the deployment files the next best way: nats-server
// itself tests each NATS configuration (-t, and its own parser for the
// permissions), and every other file is parsed and its references checked:
// services, volumes, files, Secrets, environment variables, and the flags
// of spoor serve and of Trillian's commands.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
)

// pendingServeFlags are flags of spoor serve that the deployment files use
// but that are yet to be added. The test tolerates them, says so, and
// reports when they have arrived. (--log, --trillian and --tree-id of issue
// 9 item 1, the Trillian backend, have arrived.)
var pendingServeFlags = map[string]bool{}

// The paths that the NATS configurations use on a real host, which the test
// maps into a temporary folder.
const (
	tlsDir   = "/etc/nats/tls/"
	storeDir = "/var/lib/nats"
)

var varRE = regexp.MustCompile(`password: \$([A-Z0-9_]+)`)

// accountVars returns the password variables of accounts.conf, in order.
func accountVars(t *testing.T) []string {
	t.Helper()
	b := readFile(t, "nats/accounts.conf")
	var out []string
	for _, m := range varRE.FindAllStringSubmatch(b, -1) {
		out = append(out, m[1])
	}
	if len(out) < 3 {
		t.Fatalf("accounts.conf names only %d password variables", len(out))
	}
	return out
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goCommand finds the go command that runs the tests.
func goCommand(t testing.TB) string {
	t.Helper()
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		if goCmd, err = exec.LookPath("go"); err != nil {
			t.Fatalf("these tests build commands and need the go command: %v", err)
		}
	}
	return goCmd
}

// goBuild builds a main package with the go command running the tests.
func goBuild(t testing.TB, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command(goCommand(t), "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// writeTestCerts writes a CA and a certificate for the three nodes (server
// and client use, as the routes' mutual TLS needs) to dir, under the names
// the configurations use.
func writeTestCerts(t *testing.T, dir string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Spoor test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey := newKey()
	node := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames:    []string{"nats-1", "nats-2", "nats-3", "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, node, ca, &nodeKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("node.pem", "CERTIFICATE", nodeDER)
	write("node-key.pem", "EC PRIVATE KEY", keyDER)
}

// natsTestDir copies deploy/nats/*.conf into a temporary folder with the
// host paths mapped into it, and puts certificates at the TLS paths.
func natsTestDir(t *testing.T, certs string) string {
	t.Helper()
	dir := t.TempDir()
	if certs == "" {
		certs = filepath.Join(dir, "tls")
		if err := os.Mkdir(certs, 0o700); err != nil {
			t.Fatal(err)
		}
		writeTestCerts(t, certs)
	}
	confs, err := filepath.Glob("nats/*.conf")
	if err != nil || len(confs) == 0 {
		t.Fatalf("no NATS configurations in deploy/nats (%v)", err)
	}
	for _, c := range confs {
		b := readFile(t, c)
		b = strings.ReplaceAll(b, tlsDir, certs+"/")
		b = strings.ReplaceAll(b, storeDir, filepath.Join(dir, "js"))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(c)), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// passwordEnv makes a bcrypt hash (as nats.env.example asks) for each of
// the accounts' password variables.
func passwordEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, v := range accountVars(t) {
		raw := make([]byte, 12)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(raw)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+string(h))
	}
	return env
}

// TestNATSConfigCheck runs the config test mode of nats-server (-t, built
// from the version go.mod pins) on each node's configuration: with every
// password variable set it passes, and with one missing it fails, so a
// forgotten user stops the server instead of running without a password.
func TestNATSConfigCheck(t *testing.T) {
	bin := goBuild(t, "github.com/nats-io/nats-server/v2", "nats-server")
	env := passwordEnv(t)
	check := func(dir, conf string, env []string) (string, error) {
		cmd := exec.Command(bin, "-t", "-c", filepath.Join(dir, conf))
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := natsTestDir(t, "")
	for _, conf := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf"} {
		out, err := check(dir, conf, env)
		if err != nil || !strings.Contains(out, "is valid") {
			t.Errorf("nats-server -t -c %s: %v\n%s", conf, err, out)
		}
	}
	out, err := check(dir, "nats-1.conf", env[1:])
	if err == nil || !strings.Contains(out, strings.SplitN(env[0], "=", 2)[0]) {
		t.Errorf("nats-server -t passed without %s set (%v): %s", strings.SplitN(env[0], "=", 2)[0], err, out)
	}

	t.Run("make-dev-certs.sh", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("openssl is not installed; the script's certificates cannot be made here")
		}
		certs := t.TempDir()
		if out, err := exec.Command("sh", "tls/make-dev-certs.sh", certs).CombinedOutput(); err != nil {
			t.Fatalf("make-dev-certs.sh: %v\n%s", err, out)
		}
		for n := 1; n <= 3; n++ {
			node := filepath.Join(certs, "nats-"+string(rune('0'+n)))
			dir := natsTestDir(t, node)
			if out, err := check(dir, "nats-"+string(rune('0'+n))+".conf", env); err != nil {
				t.Errorf("nats-%d with the script's certificates: %v\n%s", n, err, out)
			}
			cert, err := tls.LoadX509KeyPair(filepath.Join(node, "node.pem"), filepath.Join(node, "node-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := leaf.VerifyHostname("nats-" + string(rune('0'+n))); err != nil {
				t.Errorf("node %d's certificate: %v", n, err)
			}
			if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
				t.Errorf("node %d's certificate does not allow both server and client use (route mutual TLS)", n)
			}
		}
	})
}

// TestNATSConfigContents reads each node's configuration with nats-server's
// own parser and checks what the deployment promises: JetStream, a cluster
// of three over mutual TLS, TLS for clients, and in the SPOOR account the
// ledger plus one user per party of the demo covenant whose permissions are
// exactly natsbus.PartyPermissions. It also validates the options as the
// server would before starting.
func TestNATSConfigContents(t *testing.T) {
	for _, kv := range passwordEnv(t) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	m, err := demo.Generate(filepath.Join(t.TempDir(), "keys"), "amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	var parties []string
	for _, p := range m.Signed.Covenant.Parties {
		parties = append(parties, p.ID)
	}
	dir := natsTestDir(t, "")
	names := map[string]bool{}
	for _, conf := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf"} {
		opts, err := server.ProcessConfigFile(filepath.Join(dir, conf))
		if err != nil {
			t.Fatalf("%s: %v", conf, err)
		}
		if names[opts.ServerName] || opts.ServerName == "" {
			t.Errorf("%s: server_name %q is empty or used twice", conf, opts.ServerName)
		}
		names[opts.ServerName] = true
		switch {
		case !opts.JetStream:
			t.Errorf("%s: JetStream is off", conf)
		case opts.StoreDir != filepath.Join(dir, "js"):
			t.Errorf("%s: store_dir %q is not %s", conf, opts.StoreDir, storeDir)
		case opts.TLSConfig == nil:
			t.Errorf("%s: clients connect without TLS", conf)
		case opts.Cluster.Name != "spoor" || len(opts.Routes) != 3:
			t.Errorf("%s: cluster %q with %d routes, want spoor with 3", conf, opts.Cluster.Name, len(opts.Routes))
		case opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert:
			t.Errorf("%s: routes are not mutual TLS", conf)
		case opts.SystemAccount != "SYS":
			t.Errorf("%s: system account %q", conf, opts.SystemAccount)
		}
		for _, r := range opts.Routes {
			if r.Scheme != "tls" {
				t.Errorf("%s: route %s is not tls://", conf, r)
			}
		}
		checkUsers(t, conf, opts, parties)
		// The parsed options keep an account's JetStream limits private;
		// the file must enable JetStream for SPOOR (the cluster test in
		// cmd/spoor shows it working).
		if !regexp.MustCompile(`SPOOR \{\s*jetstream: enabled`).MatchString(readFile(t, "nats/accounts.conf")) {
			t.Errorf("accounts.conf does not enable JetStream for the SPOOR account")
		}

		// Give the node free ports and validate the options as NewServer
		// does before a start (it does not start).
		opts.Port, opts.Cluster.Port, opts.HTTPPort, opts.Host, opts.Cluster.Host = -1, -1, -1, "127.0.0.1", "127.0.0.1"
		s, err := server.NewServer(opts)
		if err != nil {
			t.Errorf("%s: nats-server refuses the options: %v", conf, err)
			continue
		}
		s.Shutdown()
	}
}

func checkUsers(t *testing.T, conf string, opts *server.Options, parties []string) {
	t.Helper()
	byName := map[string]*server.User{}
	for _, u := range opts.Users {
		if u.Account == nil {
			t.Errorf("%s: user %s has no account", conf, u.Username)
			continue
		}
		if u.Password == "" || !strings.HasPrefix(u.Password, "$2a$") {
			t.Errorf("%s: user %s's password is not the bcrypt hash from the environment", conf, u.Username)
		}
		byName[u.Username] = u
	}
	want := append([]string{"ledger", "sys"}, parties...)
	var got []string
	for n := range byName {
		got = append(got, n)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: users %v, want the ledger, sys and the demo covenant's parties %v", conf, got, want)
	}
	if u := byName["ledger"]; u != nil && (u.Account.Name != "SPOOR" || u.Permissions != nil) {
		t.Errorf("%s: the ledger user is in %s with permissions %+v; want SPOOR, unrestricted", conf, u.Account.Name, u.Permissions)
	}
	if u := byName["sys"]; u != nil && u.Account.Name != "SYS" {
		t.Errorf("%s: the sys user is in account %s", conf, u.Account.Name)
	}
	for _, p := range parties {
		u := byName[p]
		if u == nil {
			continue
		}
		want := natsbus.PartyPermissions(p)
		if u.Account.Name != "SPOOR" {
			t.Errorf("%s: party %s is in account %s", conf, p, u.Account.Name)
		}
		if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil || u.Permissions.Response != nil {
			t.Errorf("%s: party %s has permissions %+v, want publish and subscribe allow lists", conf, p, u.Permissions)
			continue
		}
		if !slices.Equal(u.Permissions.Publish.Allow, want.Publish) || len(u.Permissions.Publish.Deny) != 0 {
			t.Errorf("%s: party %s may publish %v (deny %v), want exactly %v", conf, p, u.Permissions.Publish.Allow, u.Permissions.Publish.Deny, want.Publish)
		}
		if !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe) || len(u.Permissions.Subscribe.Deny) != 0 {
			t.Errorf("%s: party %s may subscribe %v, want exactly %v", conf, p, u.Permissions.Subscribe.Allow, want.Subscribe)
		}
		if want.Subscribe[0] != natsbus.InboxPrefix(p)+".>" {
			t.Errorf("party %s's inbox permission %s is not under its InboxPrefix", p, want.Subscribe[0])
		}
	}
	if !slices.ContainsFunc(opts.Accounts, func(a *server.Account) bool { return a.Name == "SPOOR" }) {
		t.Errorf("%s: no SPOOR account", conf)
	}
}

// TestNATSEnvExample checks that nats.env.example lists every password
// variable of accounts.conf, commented out (so that a copy left as it is
// stops the server), and the plain passwords the ledger needs elsewhere.
func TestNATSEnvExample(t *testing.T) {
	example := readFile(t, "nats/nats.env.example")
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^# ([A-Z0-9_]+)='\$2a\$11\$\.\.\.'$`).FindAllStringSubmatch(example, -1) {
		listed = append(listed, m[1])
	}
	if want := accountVars(t); !slices.Equal(listed, want) {
		t.Errorf("nats.env.example lists %v, want every password variable of accounts.conf: %v", listed, want)
	}
	if regexp.MustCompile(`(?m)^[A-Z]`).MatchString(example) {
		t.Error("nats.env.example sets a variable; every line must stay commented out")
	}
}

// spoorHelp is the output of spoor serve --help, made once per test run.
var spoorHelp struct {
	once sync.Once
	out  []byte
	err  error
}

// serveFlags returns the flags spoor serve has, from its help.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	spoorHelp.once.Do(func() {
		dir, err := os.MkdirTemp("", "spoor-deploy-test-")
		if err != nil {
			spoorHelp.err = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "spoor")
		if out, err := exec.Command(goCommand(t), "build", "-o", bin, "github.com/spoor-ledger/spoor/cmd/spoor").CombinedOutput(); err != nil {
			spoorHelp.out, spoorHelp.err = out, fmt.Errorf("go build ./cmd/spoor: %w", err)
			return
		}
		spoorHelp.out, spoorHelp.err = exec.Command(bin, "serve", "--help").CombinedOutput()
	})
	out, err := spoorHelp.out, spoorHelp.err
	if err != nil {
		t.Fatalf("spoor serve --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["data"] || !flags["nats"] || !flags["replicas"] {
		t.Fatalf("spoor serve --help lists %v; want at least --data, --nats and --replicas", flags)
	}
	return flags
}

var flagUseRE = regexp.MustCompile(`(?:^|[\s"'])--([a-z][a-z0-9-]*)`)

// checkServeFlags checks that every flag in a spoor serve command line
// exists, apart from the pending ones.
func checkServeFlags(t *testing.T, where, cmdline string, have map[string]bool) {
	t.Helper()
	if !strings.Contains(cmdline, "serve") {
		t.Errorf("%s: %q does not run spoor serve", where, cmdline)
	}
	for _, m := range flagUseRE.FindAllStringSubmatch(cmdline, -1) {
		switch f := m[1]; {
		case have[f] && pendingServeFlags[f]:
			t.Logf("%s: --%s now exists; remove it from pendingServeFlags", where, f)
		case have[f]:
		case pendingServeFlags[f]:
			t.Logf("%s: --%s is not in spoor serve yet (issue 9 item 1, the Trillian backend)", where, f)
		default:
			t.Errorf("%s: spoor serve has no flag --%s", where, f)
		}
	}
}

// trillianFlags returns the flag names defined in Trillian's module (the
// version go.mod pins), the superset of what its commands accept.
func trillianFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(goCommand(t), "list", "-m", "-f", "{{.Dir}}", "github.com/google/trillian").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		if out, err := exec.Command(goCommand(t), "mod", "download", "github.com/google/trillian").CombinedOutput(); err != nil {
			t.Fatalf("go mod download github.com/google/trillian: %v\n%s", err, out)
		}
		out, err = exec.Command(goCommand(t), "list", "-m", "-f", "{{.Dir}}", "github.com/google/trillian").Output()
		if dir = strings.TrimSpace(string(out)); err != nil || dir == "" {
			t.Fatalf("couldn't find Trillian's module folder: %v", err)
		}
	}
	defRE := regexp.MustCompile(`flag\.[A-Za-z0-9]+\("([a-z_]+)"`)
	flags := map[string]bool{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range defRE.FindAllSubmatch(b, -1) {
			flags[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	EnvFile     []string          `yaml:"env_file"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// operatorMade are the files of the compose folder that the operator makes
// (from the examples and make-dev-certs.sh); they are not in the repository.
var operatorMade = map[string]string{
	"nats.env":  "nats/nats.env.example",
	"spoor.env": "compose/spoor.env.example",
	".env":      "compose/env.example",
	"tls":       "tls/make-dev-certs.sh",
}

// TestCompose parses the compose file and checks that it holds the three
// NATS nodes, the ledger, Trillian and PostgreSQL, and that every reference
// in it finds what it names.
func TestCompose(t *testing.T) {
	raw := readFile(t, "compose/compose.yaml")
	var c composeFile
	if err := yaml.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"nats-1", "nats-2", "nats-3", "spoor", "postgres", "trillian-log-server", "trillian-log-signer", "trillian-createtree", "trillian-schema"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("compose.yaml has no service %s", s)
		}
	}
	usedVolumes := map[string]bool{}
	hostPorts := map[string]string{}
	composeDir := "compose"
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if s.Build != nil {
			df := filepath.Join(composeDir, s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("service %s builds from %s: %v", name, df, err)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			}
		}
		for _, ef := range s.EnvFile {
			if _, ok := operatorMade[ef]; !ok {
				t.Errorf("service %s reads env file %s, which nothing makes", name, ef)
			}
		}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("service %s publishes %q; publish on 127.0.0.1:HOST:CONTAINER only", name, p)
				continue
			}
			if other, dup := hostPorts[parts[1]]; dup {
				t.Errorf("services %s and %s both publish host port %s", name, other, parts[1])
			}
			hostPorts[parts[1]] = name
		}
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok {
				t.Errorf("service %s: volume %q has no target", name, v)
				continue
			}
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				usedVolumes[src] = true
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s uses volume %s, which is not declared", name, src)
				}
				continue
			}
			rel := filepath.Clean(filepath.Join(composeDir, src))
			if _, err := os.Stat(rel); err == nil {
				continue
			}
			first := strings.SplitN(filepath.ToSlash(strings.TrimPrefix(src, "./")), "/", 2)[0]
			if _, ok := operatorMade[first]; !ok {
				t.Errorf("service %s mounts %s, which is neither in the repository nor made by the operator", name, src)
			}
		}
	}
	for v := range c.Volumes {
		if !usedVolumes[v] {
			t.Errorf("volume %s is declared but not used", v)
		}
	}

	// The NATS nodes run the shipped configurations, each its own.
	for i := 1; i <= 3; i++ {
		s := c.Services["nats-"+string(rune('0'+i))]
		conf := "nats-" + string(rune('0'+i)) + ".conf"
		if !slices.Equal(s.Command, []string{"-c", "/etc/nats/conf/" + conf}) || !slices.Contains(s.Volumes, "../nats:/etc/nats/conf:ro") {
			t.Errorf("service nats-%d does not run deploy/nats/%s: command %v, volumes %v", i, conf, s.Command, s.Volumes)
		}
		if !slices.Contains(s.Volumes, "./tls/nats-"+string(rune('0'+i))+":"+strings.TrimSuffix(tlsDir, "/")+":ro") {
			t.Errorf("service nats-%d does not mount its certificates at %s", i, tlsDir)
		}
	}

	// Variables: compose's own (${X}) are in env.example; the ledger's
	// shell's ($${X}) in spoor.env.example.
	envExample, spoorEnv := readFile(t, "compose/env.example"), readFile(t, "compose/spoor.env.example")
	for _, m := range regexp.MustCompile(`(^|[^$])\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(raw, -1) {
		if !regexp.MustCompile(`(?m)^` + m[2] + `=`).MatchString(envExample) {
			t.Errorf("compose.yaml uses ${%s}, which env.example does not list", m[2])
		}
	}
	for _, m := range regexp.MustCompile(`\$\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(raw, -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(spoorEnv) {
			t.Errorf("the spoor service's shell uses $%s, which spoor.env.example does not list", m[1])
		}
	}

	// The ledger: three replicas on the three nodes, flags that exist.
	sp := c.Services["spoor"]
	cmdline := strings.Join(sp.Command, " ")
	for i := 1; i <= 3; i++ {
		if !strings.Contains(cmdline, "@nats-"+string(rune('0'+i))+":4222") {
			t.Errorf("the ledger does not list nats-%d in --nats", i)
		}
	}
	if !strings.Contains(cmdline, "--replicas 3") {
		t.Error("the ledger does not run with --replicas 3")
	}
	checkServeFlags(t, "compose spoor", cmdline, serveFlags(t))

	// Trillian's commands: flags that exist in the pinned version.
	tf := trillianFlags(t)
	for _, name := range []string{"trillian-log-server", "trillian-log-signer", "trillian-createtree"} {
		s := c.Services[name]
		for _, m := range regexp.MustCompile(`--([a-z_]+)`).FindAllStringSubmatch(strings.Join(s.Command, " "), -1) {
			if !tf[m[1]] {
				t.Errorf("service %s passes --%s, which Trillian does not define", name, m[1])
			}
		}
	}
	if !strings.Contains(strings.Join(c.Services["trillian-createtree"].Command, " "), "--tree_type=PREORDERED_LOG") {
		t.Error("createtree does not make a PREORDERED_LOG tree")
	}
}

// unit is a parsed systemd unit: section -> key -> values.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	u := unit{}
	section := ""
	text := strings.ReplaceAll(readFile(t, path), "\\\n", " ")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestSystemdUnits checks the units' hardening and their command lines, and
// has systemd-analyze verify them where it is installed.
func TestSystemdUnits(t *testing.T) {
	spoor := parseUnit(t, "systemd/spoor.service")
	nats := parseUnit(t, "systemd/nats.service")
	hardening := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
		"LockPersonality": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
	}
	for name, u := range map[string]unit{"spoor.service": spoor, "nats.service": nats} {
		svc := u["Service"]
		for k, want := range hardening {
			if got := svc[k]; len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s=%v, want %q", name, k, got, want)
			}
		}
		if u := svc["User"]; len(u) != 1 || u[0] == "root" {
			t.Errorf("%s runs as %v; want its own unprivileged user", name, u)
		}
	}
	execStart := strings.Join(spoor["Service"]["ExecStart"], " ")
	checkServeFlags(t, "spoor.service", execStart, serveFlags(t))
	if !strings.Contains(execStart, "--replicas 3") || !strings.Contains(execStart, "--nats ${SPOOR_NATS_URL}") {
		t.Errorf("spoor.service does not run against the cluster with three replicas: %s", execStart)
	}
	example := readFile(t, "systemd/spoor.env.example")
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(execStart, -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf("spoor.service uses ${%s}, which spoor.env.example does not set", m[1])
		}
	}
	if got := nats["Service"]["ExecStart"]; len(got) != 1 || !strings.HasSuffix(got[0], "nats-server -c /etc/nats/nats.conf") {
		t.Errorf("nats.service ExecStart %v", got)
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed here")
		}
		// verify wants the commands to exist: point them at stand-ins.
		dir := t.TempDir()
		bin := filepath.Join(dir, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"spoor", "nats-server"} {
			if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		var units []string
		for _, name := range []string{"spoor.service", "nats.service"} {
			b := strings.ReplaceAll(readFile(t, "systemd/"+name), "/usr/local/bin/", bin+"/")
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
			units = append(units, p)
		}
		out, err := execCommand(sa, append([]string{"verify"}, units...)...)
		if err != nil {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "spoor.service") || strings.Contains(line, "nats.service") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	})
}

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		ServiceName string            `yaml:"serviceName"`
		Replicas    *int              `yaml:"replicas"`
		ClusterIP   string            `yaml:"clusterIP"`
		Selector    yaml.Node         `yaml:"selector"`
		Ports       []k8sServicePort  `yaml:"ports"`
		Template    k8sPodTemplate    `yaml:"template"`
		Claims      []k8sClaim        `yaml:"volumeClaimTemplates"`
		Labels      map[string]string `yaml:"labels"`
	} `yaml:"spec"`
}

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type k8sClaim struct {
	Metadata k8sMeta `yaml:"metadata"`
}

type k8sPodTemplate struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		InitContainers []k8sContainer `yaml:"initContainers"`
		Containers     []k8sContainer `yaml:"containers"`
		Volumes        []struct {
			Name   string `yaml:"name"`
			Secret *struct {
				SecretName string `yaml:"secretName"`
			} `yaml:"secret"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
		SecurityContext struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
		} `yaml:"securityContext"`
	} `yaml:"spec"`
}

type k8sEnv struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Env   []k8sEnv `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

// TestKubernetes parses the manifests and the NATS chart values and checks
// their references: the StatefulSet's Services, volume claim, Secret and
// ConfigMap, the files the ledger reads from them, its flags, and that the
// chart's accounts are the shipped ones with every password from a Secret.
func TestKubernetes(t *testing.T) {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, "kubernetes/spoor.yaml"))))
	objs := map[string]*k8sObject{}
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("spoor.yaml: %v", err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("spoor.yaml: an object without apiVersion, kind or name: %+v", o)
		}
		key := o.Kind + "/" + o.Metadata.Name
		if objs[key] != nil {
			t.Fatalf("spoor.yaml: %s twice", key)
		}
		objs[key] = &o
	}
	sts := objs["StatefulSet/spoor"]
	if sts == nil {
		t.Fatal("spoor.yaml has no StatefulSet spoor")
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 2 {
		t.Error("the StatefulSet must run two replicas: the active ledger and its standby")
	}
	// Two pods may only run together when the lease picks the one
	// sequencer, and only the active one may be sent writes.
	raw := readFile(t, "kubernetes/spoor.yaml")
	if !strings.Contains(raw, "- --replicate") || !strings.Contains(raw, `path: "/healthz?role=active"`) {
		t.Error("spoor.yaml runs two pods without --replicate or without a readiness probe that only the active ledger passes")
	}
	podLabels := sts.Spec.Template.Metadata.Labels
	if hs := objs["Service/"+sts.Spec.ServiceName]; hs == nil || hs.Spec.ClusterIP != "None" {
		t.Errorf("the StatefulSet's serviceName %q is not a headless Service in spoor.yaml", sts.Spec.ServiceName)
	}
	var selected int
	for key, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		var sel map[string]string
		if err := o.Spec.Selector.Decode(&sel); err != nil {
			t.Fatalf("%s selector: %v", key, err)
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s selects %s=%s, which the pods do not carry", key, k, v)
			}
		}
		selected++
		for _, p := range o.Spec.Ports {
			if !hasPort(sts.Spec.Template.Spec.Containers, p.TargetPort) {
				t.Errorf("%s targets port %q, which no container names", key, p.TargetPort)
			}
		}
	}
	if selected < 2 {
		t.Error("spoor.yaml needs a headless Service and a Service for the API")
	}
	if len(sts.Spec.Claims) != 1 {
		t.Fatalf("the StatefulSet has %d volume claims, want 1 (the data folder)", len(sts.Spec.Claims))
	}
	volumes := map[string]bool{sts.Spec.Claims[0].Metadata.Name: true}
	pod := sts.Spec.Template.Spec
	if !pod.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
		switch {
		case v.Secret != nil && objs["Secret/"+v.Secret.SecretName] == nil:
			t.Errorf("volume %s uses Secret %s, which spoor.yaml does not define", v.Name, v.Secret.SecretName)
		case v.ConfigMap != nil && objs["ConfigMap/"+v.ConfigMap.Name] == nil:
			t.Errorf("volume %s uses ConfigMap %s, which spoor.yaml does not define", v.Name, v.ConfigMap.Name)
		}
	}
	secret, config := objs["Secret/spoor-keys"], objs["ConfigMap/spoor-config"]
	if secret == nil || config == nil {
		t.Fatal("spoor.yaml needs the Secret spoor-keys and the ConfigMap spoor-config")
	}
	for _, k := range []string{"log.key", "log.vkey", "cosigner.key", "cosigner.vkey"} {
		if _, ok := secret.StringData[k]; !ok {
			t.Errorf("Secret spoor-keys has no %s", k)
		}
	}
	// A placeholder token would be a valid, public FG token: the ledger
	// must make its own.
	if _, ok := secret.StringData["fg.token"]; ok {
		t.Error("Secret spoor-keys holds fg.token; let the ledger make it")
	}
	mounts := map[string]string{} // path -> volume
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("container %s: want allowPrivilegeEscalation false and a read-only root", c.Name)
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("container %s mounts %s, which is no volume", c.Name, m.Name)
			}
			mounts[m.MountPath] = m.Name
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if s := objs["Secret/"+ref.Name]; s == nil {
					t.Errorf("container %s: env %s from Secret %s, which spoor.yaml does not define", c.Name, e.Name, ref.Name)
				} else if _, ok := s.StringData[ref.Key]; !ok {
					t.Errorf("container %s: env %s from key %s, which Secret %s lacks", c.Name, e.Name, ref.Key, ref.Name)
				}
			}
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want the ledger alone", len(pod.Containers))
	}
	ledger := pod.Containers[0]
	args := strings.Join(ledger.Args, " ")
	checkServeFlags(t, "spoor.yaml", args, serveFlags(t))
	if !strings.Contains(args, "--replicas=3") || !strings.Contains(args, "--data=/var/lib/spoor") {
		t.Errorf("the ledger's args %q lack --replicas=3 or --data=/var/lib/spoor", args)
	}
	if mounts["/var/lib/spoor"] != sts.Spec.Claims[0].Metadata.Name {
		t.Error("the data folder is not on the volume claim")
	}
	// Every file the ledger reads from a mounted ConfigMap is in it.
	for _, m := range regexp.MustCompile(`/etc/spoor/config/([a-z.-]+)`).FindAllStringSubmatch(args+" "+envValues(ledger), -1) {
		if _, ok := config.Data[m[1]]; !ok {
			t.Errorf("the ledger reads %s, which ConfigMap spoor-config lacks", m[0])
		}
	}
	for _, ref := range regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`).FindAllStringSubmatch(args, -1) {
		if !slices.ContainsFunc(ledger.Env, func(e k8sEnv) bool { return e.Name == ref[1] }) {
			t.Errorf("the ledger's args use $(%s), which its env does not define", ref[1])
		}
	}

	t.Run("nats-values.yaml", func(t *testing.T) {
		var v struct {
			Config struct {
				Cluster struct {
					Enabled  bool `yaml:"enabled"`
					Replicas int  `yaml:"replicas"`
					TLS      struct {
						Enabled    bool           `yaml:"enabled"`
						SecretName string         `yaml:"secretName"`
						Merge      map[string]any `yaml:"merge"`
					} `yaml:"tls"`
				} `yaml:"cluster"`
				JetStream struct {
					Enabled   bool `yaml:"enabled"`
					FileStore struct {
						Enabled bool `yaml:"enabled"`
					} `yaml:"fileStore"`
				} `yaml:"jetstream"`
				NATS struct {
					TLS struct {
						Enabled bool `yaml:"enabled"`
					} `yaml:"tls"`
				} `yaml:"nats"`
				Merge map[string]any `yaml:"merge"`
			} `yaml:"config"`
			TLSCA struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"tlsCA"`
			ConfigMap struct {
				Merge struct {
					Data map[string]string `yaml:"data"`
				} `yaml:"merge"`
			} `yaml:"configMap"`
			Container struct {
				Env map[string]struct {
					ValueFrom struct {
						SecretKeyRef struct {
							Name string `yaml:"name"`
							Key  string `yaml:"key"`
						} `yaml:"secretKeyRef"`
					} `yaml:"valueFrom"`
				} `yaml:"env"`
			} `yaml:"container"`
		}
		if err := yaml.Unmarshal([]byte(readFile(t, "kubernetes/nats-values.yaml")), &v); err != nil {
			t.Fatal(err)
		}
		c := v.Config
		if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled {
			t.Errorf("the chart values do not make a three-node JetStream cluster on files: %+v", c)
		}
		if !c.NATS.TLS.Enabled || !c.Cluster.TLS.Enabled || c.Cluster.TLS.Merge["verify"] != true || !v.TLSCA.Enabled {
			t.Error("the chart values do not put TLS on clients and mutual TLS on routes")
		}
		inc, _ := c.Merge["$include"].(string)
		if got, want := v.ConfigMap.Merge.Data[inc], readFile(t, "nats/accounts.conf"); inc == "" || got != want {
			t.Errorf("the chart includes %q, which is not a copy of deploy/nats/accounts.conf; copy it again", inc)
		}
		for _, name := range accountVars(t) {
			ref := v.Container.Env[name].ValueFrom.SecretKeyRef
			if ref.Name == "" || ref.Key != name {
				t.Errorf("the chart's container env does not take %s from a Secret", name)
			}
		}
	})
}

func hasPort(cs []k8sContainer, name string) bool {
	for _, c := range cs {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

func envValues(c k8sContainer) string {
	var out []string
	for _, e := range c.Env {
		out = append(out, e.Value)
	}
	return strings.Join(out, " ")
}
