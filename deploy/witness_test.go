package deploy

// The witness deployment files: the example configuration and 2-of-3
// policy (deploy/witness), the compose override, the systemd unit and the
// Kubernetes manifest. The configurations are run for real: the spoor
// binary serves each one (paths moved into a temporary folder, a real key
// and log key filled in) and its status page must name the log; the
// policy, with real witness keys, must be one the covenant accepts. The
// rest is parsed and its references checked, as for the ledger's files.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gopkg.in/yaml.v3"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
)

// The paths the witness files use on a real host or in a container.
const (
	witnessConfigPath = "/etc/spoor-witness/witness.yaml"
	witnessStateDir   = "/var/lib/spoor-witness"
)

// witnessHelp returns the flags of spoor witness serve, from bin's help.
func witnessServeFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, "witness", "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("spoor witness serve --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["config"] {
		t.Fatalf("spoor witness serve --help lists %v; want at least --config", flags)
	}
	return flags
}

// checkWitnessCmd checks a spoor witness serve command line: it serves,
// with the shared configuration path unless configPath says otherwise, and
// every flag exists.
func checkWitnessCmd(t *testing.T, where, cmdline, configPath string, have map[string]bool) {
	t.Helper()
	if !strings.Contains(cmdline, "witness serve") {
		t.Errorf("%s: %q does not run spoor witness serve", where, cmdline)
	}
	if !strings.Contains(cmdline, "--config "+configPath) && !strings.Contains(cmdline, "--config="+configPath) {
		t.Errorf("%s: %q does not read %s", where, cmdline, configPath)
	}
	for _, m := range flagUseRE.FindAllStringSubmatch(cmdline, -1) {
		if !have[m[1]] {
			t.Errorf("%s: spoor witness serve has no flag --%s", where, m[1])
		}
	}
}

// examplePolicy returns deploy/witness/witnesses.policy with a real witness
// key made by spoor witness keygen for each placeholder.
func examplePolicy(t *testing.T, bin string) string {
	t.Helper()
	text := readFile(t, "witness/witnesses.policy")
	dir := t.TempDir()
	for i := 1; i <= 3; i++ {
		out, err := exec.Command(bin, "witness", "keygen", "--name", fmt.Sprintf("witness.example/fg-%d", i),
			"-o", filepath.Join(dir, fmt.Sprintf("fg-%d.key", i))).Output()
		if err != nil {
			t.Fatalf("spoor witness keygen: %v", err)
		}
		ph := fmt.Sprintf("REPLACE_FG_%d_VKEY", i)
		if !strings.Contains(text, ph) {
			t.Fatalf("witnesses.policy has no placeholder %s", ph)
		}
		text = strings.ReplaceAll(text, ph, strings.TrimSpace(string(out)))
	}
	return text
}

func TestWitnessDeploy(t *testing.T) {
	bin := goBuild(t, "github.com/spoor-ledger/spoor/cmd/spoor", "spoor")
	wflags := witnessServeFlags(t, bin)

	// The policy's witnesses, by name: fg-N at http://witness-fg-N:8090.
	policyText := examplePolicy(t, bin)
	policy, err := events.ParseWitnessPolicy(policyText)
	if err != nil {
		t.Fatalf("witnesses.policy with real keys: %v", err)
	}
	hosts := map[string]string{} // witness name -> host:port
	for _, w := range policy.Witnesses {
		u, err := url.Parse(w.URL)
		if err != nil || u.Host == "" {
			t.Fatalf("witness %s has URL %q", w.Name, w.URL)
		}
		hosts[w.Name] = u.Host
	}

	t.Run("policy is 2 of 3 and the covenant takes it", func(t *testing.T) {
		if len(policy.Witnesses) != 3 {
			t.Fatalf("the policy names %d witnesses, want 3 (one per FG)", len(policy.Witnesses))
		}
		i := slices.IndexFunc(policy.Groups, func(g events.PolicyGroup) bool { return g.Name == policy.Quorum })
		if i < 0 || policy.Groups[i].Threshold != 2 || len(policy.Groups[i].Members) != 3 {
			t.Fatalf("the quorum %q is not a group of 2 of 3: %+v", policy.Quorum, policy.Groups)
		}
		// What the comment at its top tells the administrator to run.
		m, err := demo.Ensure(filepath.Join(t.TempDir(), "demo-keys"), "amersfoort")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		pf, v2 := filepath.Join(dir, "witnesses.policy"), filepath.Join(dir, "covenant-v2.yaml")
		if err := os.WriteFile(pf, []byte(policyText), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "covenant", "next", filepath.Join(m.Dir, demo.SignedFile),
			"--witness-policy", pf, "-o", v2).CombinedOutput(); err != nil {
			t.Fatalf("spoor covenant next with the example policy: %v\n%s", err, out)
		}
		if out, err := exec.Command(bin, "covenant", "sign", v2, "--key", filepath.Join(m.Dir, demo.AdminKeyFile),
			"--previous", filepath.Join(m.Dir, demo.SignedFile), "-o", filepath.Join(dir, "covenant-v2.signed")).CombinedOutput(); err != nil {
			t.Fatalf("spoor covenant sign: %v\n%s", err, out)
		}
	})

	t.Run("configurations run", func(t *testing.T) {
		k8s := k8sWitnessObjects(t)
		cm := k8s["ConfigMap/spoor-witness-config"]
		if cm == nil || cm.Data["witness.yaml"] == "" {
			t.Fatal("witnesses.yaml has no ConfigMap spoor-witness-config with witness.yaml")
		}
		for name, text := range map[string]string{
			"witness/witness.yaml":                  readFile(t, "witness/witness.yaml"),
			"kubernetes/witnesses.yaml (ConfigMap)": cm.Data["witness.yaml"],
		} {
			t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) { runWitnessConfig(t, bin, text) })
		}
	})

	t.Run("compose", func(t *testing.T) {
		raw := readFile(t, "compose/witnesses.yaml")
		var c composeFile
		if err := yaml.Unmarshal([]byte(raw), &c); err != nil {
			t.Fatalf("witnesses.yaml: %v", err)
		}
		var base composeFile
		if err := yaml.Unmarshal([]byte(readFile(t, "compose/compose.yaml")), &base); err != nil {
			t.Fatal(err)
		}
		basePorts := map[string]bool{}
		for _, s := range base.Services {
			for _, p := range s.Ports {
				basePorts[strings.Split(p, ":")[1]] = true
			}
		}
		used := map[string]bool{}
		for wname, hostport := range hosts {
			svc, port, _ := strings.Cut(hostport, ":")
			s, ok := c.Services[svc]
			if !ok {
				t.Errorf("the policy's witness %s is at %s, which is no service of witnesses.yaml", wname, hostport)
				continue
			}
			checkWitnessCmd(t, "compose "+svc, strings.Join(s.Command, " "), witnessConfigPath, wflags)
			if len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":"+port) {
				t.Errorf("service %s publishes %v; want one port, the policy's %s in the container", svc, s.Ports, port)
			}
			for _, p := range s.Ports {
				parts := strings.Split(p, ":")
				if len(parts) != 3 || parts[0] != "127.0.0.1" || basePorts[parts[1]] {
					t.Errorf("service %s publishes %q: want 127.0.0.1:HOST:CONTAINER on a host port compose.yaml leaves free", svc, p)
				}
				basePorts[parts[1]] = true
			}
			var config, state bool
			for _, v := range s.Volumes {
				src, dst, _ := strings.Cut(v, ":")
				dst = strings.TrimSuffix(dst, ":ro")
				switch {
				case strings.HasPrefix(src, "./witness/") && dst == filepath.Dir(witnessConfigPath):
					config = true // operator-made: the key and witness.yaml
				case !strings.HasPrefix(src, ".") && dst == witnessStateDir:
					if _, ok := c.Volumes[src]; !ok {
						t.Errorf("service %s uses volume %s, which is not declared", svc, src)
					}
					if used[src] {
						t.Errorf("volume %s is the state of two witnesses", src)
					}
					used[src], state = true, true
				default:
					t.Errorf("service %s mounts %q, neither its configuration nor its state", svc, v)
				}
			}
			if !config || !state {
				t.Errorf("service %s lacks its configuration folder or its state volume", svc)
			}
		}
		for v := range c.Volumes {
			if !used[v] {
				t.Errorf("volume %s is declared but not used", v)
			}
		}
		// The ledger: compose.yaml's command, with the covenant version
		// that holds the policy.
		sp, ok := c.Services["spoor"]
		if !ok {
			t.Fatal("witnesses.yaml does not put the ledger on the covenant with the policy")
		}
		cmdline := strings.Join(sp.Command, " ")
		checkServeFlags(t, "compose witnesses spoor", cmdline, serveFlags(t))
		for _, word := range strings.Fields(strings.Join(base.Services["spoor"].Command, " ")) {
			if !strings.Contains(cmdline, word) {
				t.Errorf("the ledger's command in witnesses.yaml lacks %q of compose.yaml's", word)
			}
		}
		if !strings.Contains(cmdline, "--covenant /etc/spoor/covenant.signed") ||
			!slices.Contains(sp.Volumes, "./witness/covenant-v2.signed:/etc/spoor/covenant.signed:ro") {
			t.Errorf("the ledger does not run on ./witness/covenant-v2.signed: %s %v", cmdline, sp.Volumes)
		}
		for svc := range c.Services {
			if _, ok := sp.DependsOn[svc]; !ok && svc != "spoor" {
				t.Errorf("the ledger does not wait for %s", svc)
			}
		}
		if !strings.Contains(readFile(t, "docker/spoor.Dockerfile"), witnessStateDir) {
			t.Errorf("the image does not make %s, so a new state volume would belong to root", witnessStateDir)
		}
	})

	t.Run("systemd", func(t *testing.T) {
		u := parseUnit(t, "systemd/spoor-witness.service")
		svc := u["Service"]
		ledger := parseUnit(t, "systemd/spoor.service")["Service"]
		// The same hardening as the ledger's unit, key by key.
		for _, k := range []string{"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
			"CapabilityBoundingSet", "RestrictNamespaces", "MemoryDenyWriteExecute", "SystemCallArchitectures",
			"SystemCallFilter", "UMask", "LockPersonality", "ProtectKernelTunables", "ProtectControlGroups",
			"RestrictAddressFamilies", "StateDirectoryMode"} {
			if !slices.Equal(svc[k], ledger[k]) {
				t.Errorf("spoor-witness.service: %s=%v, the ledger's unit has %v", k, svc[k], ledger[k])
			}
		}
		if user := svc["User"]; len(user) != 1 || user[0] == "root" || user[0] == "spoor" {
			t.Errorf("spoor-witness.service runs as %v; want a user of its own", user)
		}
		checkWitnessCmd(t, "spoor-witness.service", strings.Join(svc["ExecStart"], " "), witnessConfigPath, wflags)
		if sd := svc["StateDirectory"]; len(sd) != 1 || "/var/lib/"+sd[0] != witnessStateDir {
			t.Errorf("spoor-witness.service: StateDirectory=%v, want the example's state_dir %s", sd, witnessStateDir)
		}
		var cfg struct {
			KeyFile  string `yaml:"key_file"`
			StateDir string `yaml:"state_dir"`
		}
		if err := yaml.Unmarshal([]byte(readFile(t, "witness/witness.yaml")), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.StateDir != witnessStateDir || filepath.Dir(cfg.KeyFile) != filepath.Dir(witnessConfigPath) {
			t.Errorf("witness.yaml keeps its key in %s and state in %s; the unit gives %s and %s",
				cfg.KeyFile, cfg.StateDir, filepath.Dir(witnessConfigPath), witnessStateDir)
		}
		if sa, err := exec.LookPath("systemd-analyze"); err == nil {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "spoor"), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "spoor-witness.service")
			b := strings.ReplaceAll(readFile(t, "systemd/spoor-witness.service"), "/usr/local/bin/", dir+"/")
			if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
			out, _ := execCommand(sa, "verify", p)
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "spoor-witness.service") {
					t.Errorf("systemd-analyze verify: %s", line)
				}
			}
		} else {
			t.Log("systemd-analyze is not installed here; the unit was parsed, not verified")
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		objs := k8sWitnessObjects(t)
		sts := objs["StatefulSet/spoor-witness"]
		if sts == nil || sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
			t.Fatal("witnesses.yaml needs a StatefulSet spoor-witness of three pods, one per FG")
		}
		hs := objs["Service/"+sts.Spec.ServiceName]
		if hs == nil || hs.Spec.ClusterIP != "None" {
			t.Fatalf("the StatefulSet's serviceName %q is not a headless Service", sts.Spec.ServiceName)
		}
		var sel map[string]string
		if err := hs.Spec.Selector.Decode(&sel); err != nil {
			t.Fatal(err)
		}
		pod := sts.Spec.Template.Spec
		for k, v := range sel {
			if sts.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the pods do not carry", hs.Metadata.Name, k, v)
			}
		}
		if !pod.SecurityContext.RunAsNonRoot {
			t.Error("the witness pod may run as root")
		}
		if len(pod.Containers) != 1 || len(sts.Spec.Claims) != 1 {
			t.Fatal("want one container, the witness, and one volume claim, its state")
		}
		w := pod.Containers[0]
		checkWitnessCmd(t, "witnesses.yaml", strings.Join(w.Args, " "), "/etc/spoor-witness/config/witness.yaml", wflags)
		for _, p := range hs.Spec.Ports {
			if !hasPort(pod.Containers, p.TargetPort) || p.Port != 8090 {
				t.Errorf("Service port %+v does not reach the witness's 8090", p)
			}
		}
		volumes := map[string]bool{sts.Spec.Claims[0].Metadata.Name: true}
		for _, v := range pod.Volumes {
			volumes[v.Name] = true
			if v.Secret != nil && objs["Secret/"+v.Secret.SecretName] == nil ||
				v.ConfigMap != nil && objs["ConfigMap/"+v.ConfigMap.Name] == nil {
				t.Errorf("volume %s names a Secret or ConfigMap witnesses.yaml does not define", v.Name)
			}
		}
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("container %s: want allowPrivilegeEscalation false and a read-only root", c.Name)
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("container %s mounts %s, which is no volume", c.Name, m.Name)
				}
			}
		}
		// Each pod's key is in the Secret under its pod name, where the
		// init container looks; the policy's hosts are the pods' names.
		keys := objs["Secret/spoor-witness-keys"]
		if keys == nil || len(pod.InitContainers) != 1 || !strings.Contains(strings.Join(pod.InitContainers[0].Args, " "), "$(POD_NAME).key") {
			t.Fatal("want the Secret spoor-witness-keys and an init container installing $(POD_NAME).key")
		}
		for i := range 3 {
			podName := fmt.Sprintf("%s-%d", sts.Metadata.Name, i)
			if _, ok := keys.StringData[podName+".key"]; !ok {
				t.Errorf("Secret spoor-witness-keys has no key for pod %s", podName)
			}
		}
	})
}

// k8sWitnessObjects parses kubernetes/witnesses.yaml by kind/name.
func k8sWitnessObjects(t *testing.T) map[string]*k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, "kubernetes/witnesses.yaml"))))
	objs := map[string]*k8sObject{}
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("witnesses.yaml: %v", err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" || objs[o.Kind+"/"+o.Metadata.Name] != nil {
			t.Fatalf("witnesses.yaml: an object without apiVersion, kind or name, or twice: %+v", o)
		}
		objs[o.Kind+"/"+o.Metadata.Name] = &o
	}
}

// runWitnessConfig serves a witness configuration for real: its absolute
// paths moved into a temporary folder, a key made by spoor witness keygen
// where it says, the log's verifier key (for its origin) in place of the
// placeholder, any port. Its status page must name the log.
func runWitnessConfig(t *testing.T, bin, text string) {
	dir := t.TempDir()
	var cfg struct {
		KeyFile string `yaml:"key_file"`
		Logs    []struct {
			Origin string `yaml:"origin"`
		} `yaml:"logs"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil || len(cfg.Logs) != 1 || cfg.KeyFile == "" {
		t.Fatalf("the configuration does not parse, or lists not one log: %v\n%s", err, text)
	}
	origin := cfg.Logs[0].Origin
	_, logVkey, err := note.GenerateKey(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	text = regexp.MustCompile(`"REPLACE:[^"]*"`).ReplaceAllString(text, `"`+logVkey+`"`)
	for _, m := range regexp.MustCompile(`(?m): (/\S*)`).FindAllStringSubmatch(text, -1) {
		if !strings.HasPrefix(m[1], "/etc/spoor-witness/") && !strings.HasPrefix(m[1], witnessStateDir) {
			t.Fatalf("the configuration names %s, a path the test does not map", m[1])
		}
	}
	text = strings.ReplaceAll(text, "/etc/spoor-witness/", filepath.Join(dir, "etc")+"/")
	text = strings.ReplaceAll(text, witnessStateDir, filepath.Join(dir, "state"))
	if strings.Contains(text, "REPLACE") {
		t.Fatalf("the configuration has a placeholder the test does not fill:\n%s", text)
	}
	var mapped struct {
		KeyFile string `yaml:"key_file"`
	}
	if err := yaml.Unmarshal([]byte(text), &mapped); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(mapped.KeyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "witness", "keygen", "--name", "witness.example/fg-test", "-o", mapped.KeyFile).CombinedOutput(); err != nil {
		t.Fatalf("spoor witness keygen: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "witness.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "witness", "serve", "--config", cfgPath, "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// The address it listens on is in its start line.
	addr := make(chan string, 1)
	var logged bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
			if m := regexp.MustCompile(`http=(http://\S+)`).FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		exited <- cmd.Wait()
	}()
	var base string
	select {
	case base = <-addr:
	case err := <-exited:
		exited <- err
		t.Fatalf("spoor witness serve exited: %v\n%s", err, logged.String())
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "log "+origin) ||
		!strings.Contains(string(page), "witness.example/fg-test") {
		t.Fatalf("the status page (%d) does not name the witness and the log %s:\n%s", resp.StatusCode, origin, page)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("spoor witness serve did not stop cleanly on SIGINT: %v\n%s", err, logged.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("spoor witness serve did not stop within 30 s of SIGINT")
	}
}
