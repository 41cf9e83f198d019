package main

// Helpers of the cluster test: a three-node NATS JetStream cluster of real
// nats-server processes on loopback, built from the nats-server module that
// go.mod pins, with the users of the shipped deploy/nats/accounts.conf.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// accountsConf is the shipped accounts file, relative to this package.
var accountsConf = filepath.Join("..", "..", "deploy", "nats", "accounts.conf")

// buildNATSServer builds the nats-server command of the module version in
// go.mod into a temporary folder and returns its path.
func buildNATSServer(t testing.TB) string {
	t.Helper()
	goCmd, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.Command(goCmd, "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	return bin
}

// clusterUsers are the passwords of every user in accounts.conf, by the
// environment variable that names the user's password there.
type clusterUsers struct {
	plain map[string]string // variable -> password
	env   []string          // VAR=bcrypt hash, for the nats-server processes
}

// accountsVarRE finds the password variables of accounts.conf.
var accountsVarRE = regexp.MustCompile(`password: \$([A-Z0-9_]+)`)

// newClusterUsers makes a random password for every password variable of
// the accounts file and hands the servers its bcrypt hash, as
// docs/operations.md tells the operator to do. The lowest cost keeps the
// test fast; production uses the default.
func newClusterUsers(t testing.TB, accounts []byte) *clusterUsers {
	t.Helper()
	u := &clusterUsers{plain: map[string]string{}}
	for _, m := range accountsVarRE.FindAllSubmatch(accounts, -1) {
		name := string(m[1])
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		pw := hex.EncodeToString(raw)
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		u.plain[name] = pw
		u.env = append(u.env, name+"="+string(hash))
	}
	if len(u.plain) < 3 {
		t.Fatalf("%s names %d password variables; want the ledger, the system user and the parties", accountsConf, len(u.plain))
	}
	return u
}

// partyPassword returns the password of a party's NATS user.
func (u *clusterUsers) partyPassword(party string) (string, error) {
	v := "SPOOR_PW_" + strings.ToUpper(strings.ReplaceAll(party, "-", "_"))
	pw, ok := u.plain[v]
	if !ok {
		return "", fmt.Errorf("%s has no user for party %s ($%s)", accountsConf, party, v)
	}
	return pw, nil
}

// natsNode is one nats-server process of the cluster.
type natsNode struct {
	name                            string
	clientAddr, routeAddr, httpAddr string
	confPath, logPath               string

	cmd    *exec.Cmd
	exited chan struct{}
}

// natsCluster is three nats-server processes routed to each other.
type natsCluster struct {
	bin   string
	dir   string
	users *clusterUsers
	nodes []*natsNode
}

// startNATSCluster writes a configuration per node (free loopback ports,
// routes to all three, JetStream in its own folder, the shipped accounts)
// and starts the three processes. They are killed when the test ends.
func startNATSCluster(t testing.TB, bin, dir string, users *clusterUsers) *natsCluster {
	t.Helper()
	accounts, err := os.ReadFile(accountsConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), accounts, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &natsCluster{bin: bin, dir: dir, users: users}
	for i := 1; i <= 3; i++ {
		c.nodes = append(c.nodes, &natsNode{
			name:       fmt.Sprintf("n%d", i),
			clientAddr: freeAddr(t),
			routeAddr:  freeAddr(t),
			httpAddr:   freeAddr(t),
		})
	}
	var routes []string
	for _, n := range c.nodes {
		routes = append(routes, fmt.Sprintf("%q", "nats-route://"+n.routeAddr))
	}
	for _, n := range c.nodes {
		n.confPath = filepath.Join(dir, n.name+".conf")
		n.logPath = filepath.Join(dir, n.name+".log")
		conf := fmt.Sprintf(`server_name: %s
listen: %q
http: %q
jetstream { store_dir: %q }
cluster {
  name: spoor-test
  listen: %q
  routes: [%s]
}
include ./accounts.conf
`, n.name, n.clientAddr, n.httpAddr, filepath.Join(dir, n.name+"-js"), n.routeAddr, strings.Join(routes, ", "))
		if err := os.WriteFile(n.confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.stop()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("%s log, last lines:\n%s", n.name, tailFile(n.logPath, 30))
			}
		}
	})
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *natsCluster) start(n *natsNode) error {
	logf, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't open the log of %s: %w", n.name, err)
	}
	cmd := exec.Command(c.bin, "-c", n.confPath)
	cmd.Env = append(os.Environ(), c.users.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("couldn't start %s: %w", n.name, err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	return nil
}

// running reports whether the node's process has not exited.
func (n *natsNode) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill ends the node with SIGKILL, as a machine that loses power would,
// and waits until it is gone.
func (n *natsNode) kill() error {
	if !n.running() {
		return fmt.Errorf("nats-server %s is not running", n.name)
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("couldn't kill %s: %w", n.name, err)
	}
	<-n.exited
	return nil
}

func (n *natsNode) stop() {
	if n.running() {
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// node returns the node called name.
func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// urls is the comma-separated client URL list of every node, with user
// and password in each when user is not empty.
func (c *natsCluster) urls(user, password string) string {
	var out []string
	for _, n := range c.nodes {
		u := url.URL{Scheme: "nats", Host: n.clientAddr}
		if user != "" {
			u.User = url.UserPassword(user, password)
		}
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// jsz reads a node's JetStream monitoring page.
func (n *natsNode) jsz(ctx context.Context) (*server.JSInfo, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+n.httpAddr+"/jsz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /jsz on %s: %s", n.name, resp.Status)
	}
	var info server.JSInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("GET /jsz on %s: %w", n.name, err)
	}
	return &info, nil
}

// waitMetaLeader waits until every running node names the same JetStream
// meta leader and that leader sees the other nodes as current: only then
// can the ledger create streams with three replicas.
func (c *natsCluster) waitMetaLeader(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		leader, err := c.metaLeader(ctx)
		if err == nil {
			return leader, nil
		}
		last = err
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return "", ctx.Err()
		}
	}
	return "", fmt.Errorf("no JetStream meta leader with all peers current within %s: %w", timeout, last)
}

func (c *natsCluster) metaLeader(ctx context.Context) (string, error) {
	leader := ""
	running := 0
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		running++
		info, err := n.jsz(ctx)
		if err != nil {
			return "", err
		}
		if info.Meta == nil || info.Meta.Leader == "" {
			return "", fmt.Errorf("%s knows no meta leader yet", n.name)
		}
		if leader != "" && info.Meta.Leader != leader {
			return "", fmt.Errorf("nodes disagree on the meta leader (%s, %s)", leader, info.Meta.Leader)
		}
		leader = info.Meta.Leader
	}
	ln := c.node(leader)
	if ln == nil || !ln.running() {
		return "", fmt.Errorf("the meta leader %q is not a running node", leader)
	}
	info, err := ln.jsz(ctx)
	if err != nil {
		return "", err
	}
	current := 0
	for _, p := range info.Meta.Replicas {
		if p.Current && !p.Offline {
			current++
		}
	}
	if current != running-1 {
		return "", fmt.Errorf("meta leader %s sees %d current peers, want %d", leader, current, running-1)
	}
	return leader, nil
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(couldn't read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// getWithToken GETs url with a bearer token and returns the body of a 200
// answer.
func getWithToken(ctx context.Context, url, token string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// warnings returns up to n lines of the serve log at level WARN or ERROR.
func (s *serveProc) warnings(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if len(out) < n && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// startTestCluster builds nats-server and spoor, and starts three
// nats-server processes clustered on loopback with the deployment's
// accounts, waiting until JetStream has a meta leader.
func startTestCluster(t *testing.T) (cl *natsCluster, users *clusterUsers, spoorBin, dir string) {
	t.Helper()
	began := time.Now()
	natsBin := buildNATSServer(t)
	spoorBin = buildSpoor(t)
	dir = t.TempDir()
	accounts, err := os.ReadFile(accountsConf)
	if err != nil {
		t.Fatal(err)
	}
	users = newClusterUsers(t, accounts)
	cl = startNATSCluster(t, natsBin, dir, users)
	leader, err := cl.waitMetaLeader(t.Context(), 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built nats-server and spoor and started the cluster in %s; JetStream meta leader %s",
		time.Since(began).Round(time.Millisecond), leader)
	return cl, users, spoorBin, dir
}

// startServe starts s and waits until it is ready. spoor serve exits when
// it cannot set up its streams; creating the replicated streams and their
// consumers can outlast nats.go's API timeout on a busy machine. A
// supervisor (systemd's Restart=, a Kubernetes pod) starts it again, and
// so does this, a few times.
func startServe(t *testing.T, s *serveProc) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		if err := s.start(""); err != nil {
			t.Fatal(err)
		}
		err := s.waitReady(60 * time.Second)
		if err == nil {
			return
		}
		if !errors.Is(err, errExited) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("spoor serve exited while starting (%v); starting it again, as a supervisor would", err)
	}
}
