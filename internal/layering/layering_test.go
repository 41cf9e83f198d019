package layering

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/spoor-ledger/spoor/"

// Module path prefixes of the ledger's heavy dependencies.
const (
	pebble     = "github.com/cockroachdb/pebble"
	nats       = "github.com/nats-io/"
	prometheus = "github.com/prometheus/"
	trillian   = "github.com/google/trillian"
	chromedp   = "github.com/chromedp/"
)

// testHelpers are packages only tests may use.
var testHelpers = []string{mod + "internal/axecheck", mod + "internal/browsertest", mod + "internal/testledger", mod + "internal/testenv", mod + "internal/natstest", mod + "internal/trilliantest", mod + "internal/memtree", mod + "ledger/memstore"}

// leaves are packages every package may import, whatever its rule forbids:
// each depends on nothing of Spoor (its own rule says so). The VRF of issue
// 23 is one: the events package computes its outputs for publishers, and the
// verifier (and the browser) checks them, with one definition.
var leaves = []string{mod + "verifier/aboutchild"}

// rule says what a package must not depend on, directly or through others
// (its non-test dependencies), and why. Every package of the module needs
// one: a new package must be placed on the map (docs/architecture.md).
type rule struct {
	forbid []string
	why    string
}

var rules = map[string]rule{
	"events": {[]string{mod, pebble, nats, prometheus, trillian},
		"the event, the envelope and the covenant: every party's system and every verifier imports it, so it imports no other Spoor package and no backend"},
	"events/demo": {[]string{mod + "ledger", mod + "verifier", pebble, nats, prometheus, trillian},
		"demo covenants and keys: made from events alone"},
	"events/natsbus": {[]string{mod + "ledger", mod + "verifier", pebble, trillian},
		"the publisher organisations embed: events and NATS, nothing of the ledger"},
	"verifier": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/audit", mod + "verifier/tlogclient", mod + "verifier/report", mod + "verifier/monitor", pebble, nats, prometheus, trillian, chromedp},
		"what auditors, parents and browsers import: formats, proofs, bundles; no storage, bus, metrics or Merkle backend, and neither the FG's audit engine nor the reports made from it (packages under verifier/ build on it, never the reverse; verifier/subjectindex, a leaf, is the one it may import)"},
	"verifier/aboutchild": {[]string{mod, pebble, nats, prometheus, trillian, chromedp},
		"the parent's own check (issue 23): the VRF input, keys and proofs and the sealed proof; a leaf on the standard library, x/crypto and the VRF module, so that events, the verifier and the browser use one definition"},
	"verifier/subjectindex": {[]string{mod, pebble, nats, prometheus, trillian, chromedp},
		"the subject index's public formats and proofs: a leaf on the standard library and the map keys' VRF, so that verifier (bundles), the audit, the monitor and the ledger all import the one definition"},
	"verifier/audit": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/report", mod + "verifier/monitor", pebble, nats, prometheus, trillian, chromedp},
		"the FG's audit engine, its checks and its sources (the HTTP one among them): built on verifier, nothing of the ledger, no backend, not the reports made from it"},
	"verifier/audit/sourcetest": {[]string{mod + "ledger", mod + "events/natsbus", pebble, nats, prometheus, trillian, chromedp},
		"the audit.Source conformance suite: the audit engine's seam and nothing of the implementations it holds to it"},
	"verifier/tlogclient": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/audit", mod + "verifier/report", mod + "verifier/monitor", pebble, nats, prometheus, trillian, chromedp},
		"the tiles client: reads any tlog-tiles log over HTTP and checks it with verifier; nothing of the ledger, no backend"},
	"verifier/report": {[]string{mod + "ledger", mod + "events/natsbus", pebble, nats, prometheus, trillian, chromedp},
		"the Dutch reports and their one label table, rendered from what the verifier verified: nothing of the ledger, no backend"},
	"verifier/verifypage": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/monitor", pebble, nats, prometheus, trillian, chromedp},
		"the parent's page and the verdict the browser's verifier returns: verifier and the reports, nothing of the ledger, no backend (its js/wasm build, without the audit engine or net/http, is checked by verifypage's TestWasmDependencies)"},
	"cmd/spoor-verify-wasm": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/audit", mod + "verifier/tlogclient", mod + "verifier/monitor", pebble, nats, prometheus, trillian, chromedp},
		"the verifier compiled to WebAssembly for the parent's page: verifypage's Check and nothing else"},
	"verifier/monitor": {[]string{mod + "ledger", mod + "events/natsbus", pebble, nats, trillian, chromedp},
		"the monitor follows a log over HTTP, as anyone may: no storage, bus or Merkle backend; it hands its Prometheus collectors to the caller"},
	"ledger": {[]string{mod + "ledger/answer", mod + "ledger/httpapi", mod + "ledger/ingest", mod + "ledger/logtest", mod + "ledger/memstore", mod + "ledger/pebblestore", mod + "ledger/replication", mod + "ledger/storetest", mod + "ledger/trillianlog", mod + "ledger/witnessing", pebble, nats, trillian},
		"the log core: the Store and Merkle seams are interfaces it owns; backends plug in from cmd/spoor; of its sub-packages only ledger/subjectindex, a leaf on the verifier's formats, which the sequencer updates"},
	"ledger/answer": {[]string{mod + "ledger/ingest", mod + "ledger/httpapi", mod + "ledger/replication", mod + "ledger/pebblestore", mod + "ledger/trillianlog", pebble, nats, trillian},
		"the desk's workflows (access requests, erasure proposals, the desk scope, bundles) over the ledger's exported methods, whatever the store; no HTTP, bus or backend"},
	"ledger/subjectindex": {[]string{mod + "ledger", mod + "events", pebble, nats, prometheus, trillian},
		"the subject index's storage and incremental update over a Reader of its own: the verifier's definitions and nothing of the ledger, so that the ledger may import it when the sequencer writes index heads"},
	"ledger/pebblestore": {[]string{mod + "ledger/ingest", mod + "ledger/httpapi", mod + "ledger/replication", nats, trillian},
		"the Store on Pebble and its backups, and nothing else"},
	"ledger/trillianlog": {[]string{mod + "ledger", pebble, nats},
		"the Merkle backend on Trillian: speaks Trillian's API only"},
	"ledger/ingest": {[]string{mod + "ledger/httpapi", mod + "ledger/pebblestore", mod + "ledger/trillianlog", pebble, trillian},
		"JetStream into the ledger: acks after the durable commit, whatever the store"},
	"ledger/httpapi": {[]string{mod + "ledger/ingest", mod + "ledger/pebblestore", mod + "ledger/trillianlog", pebble, nats, trillian},
		"the read API and the desk's routes over any ledger"},
	"ledger/witnessing": {[]string{mod + "ledger/pebblestore", mod + "ledger/trillianlog", mod + "ledger/httpapi", mod + "ledger/ingest", pebble, nats, trillian},
		"sends published heads to the policy's witnesses beside the ledger, whatever the store or bus"},
	"ledger/replication": {[]string{mod + "ledger/pebblestore", mod + "ledger/httpapi", pebble, trillian},
		"SPOOR_LOG over NATS, whatever the store"},
	"ledger/storetest": {[]string{mod + "ledger/pebblestore", mod + "ledger/trillianlog", pebble, nats, trillian},
		"the Store conformance suite: it must not know the backend it tests"},
	"ledger/replicationtest": {[]string{mod + "ledger/pebblestore", mod + "ledger/trillianlog", mod + "ledger/replication", mod + "ledger/memstore", mod + "internal/testledger", pebble, nats, trillian},
		"the replication conformance suite and its reference stream in memory: its caller hands it the stream and the stores, so it imports no bus and no backend"},
	"ledger/memstore": {[]string{mod + "ledger/answer", mod + "ledger/httpapi", mod + "ledger/ingest", mod + "ledger/logtest", mod + "ledger/pebblestore", mod + "ledger/replication", mod + "ledger/storetest", mod + "ledger/trillianlog", mod + "ledger/witnessing", pebble, nats, trillian},
		"the reference Store in memory, for the suite and tests: the ledger's seam and no backend"},
	"ledger/logtest": {[]string{mod + "ledger/pebblestore", mod + "ledger/trillianlog", mod + "ledger/memstore", mod + "internal/testledger", pebble, nats, trillian},
		"the Merkle-log conformance suite: its caller hands it the stores (logtest.Stores) and the backends, so it imports none"},
	"internal/crashpoint":   {[]string{mod}, "the crash tests' switch: a leaf"},
	"internal/parallel":     {[]string{mod}, "a worker loop: a leaf"},
	"internal/durable":      {[]string{mod}, "write, fsync, rename: a leaf every writer of a small file may use"},
	"internal/datadir":      {[]string{mod}, "the data folder's layout: a leaf"},
	"internal/synth":        {[]string{mod + "ledger", mod + "verifier", pebble, nats, prometheus, trillian}, "synthetic events from the covenant"},
	"internal/benchkit":     {[]string{mod + "ledger/httpapi", trillian}, "the bench's stages"},
	"internal/testledger":   {[]string{nats, trillian}, "real ledgers for tests: testenv's material and a ledger on Pebble"},
	"internal/testenv":      {[]string{mod + "ledger/pebblestore", mod + "ledger/trillianlog", mod + "ledger/memstore", mod + "ledger/replication", mod + "ledger/httpapi", mod + "ledger/ingest", pebble, nats, trillian}, "a test log's keys, covenant and signed events, without a store: what suites that must not know the backend use"},
	"internal/browsertest":  {[]string{mod, pebble, nats, prometheus, trillian}, "the real chromium the screens' tests drive, and bounded steps: a leaf"},
	"internal/axecheck":     {[]string{mod + "ledger", mod + "events", mod + "verifier", pebble, nats, prometheus, trillian}, "axe-core in a chromedp page, for the browser tests"},
	"internal/natstest":     {[]string{mod + "ledger", pebble, trillian}, "an embedded NATS server for tests"},
	"internal/natsserver":   {[]string{mod + "ledger", mod + "verifier", pebble, trillian}, "the embedded NATS server, its users file and permissions: events and NATS, nothing of the ledger"},
	"internal/websession":   {[]string{mod, pebble, nats, prometheus, trillian}, "sessions and headers of the screens people sign in to: a leaf"},
	"internal/witnesstest":  {[]string{mod + "ledger", pebble, nats, trillian}, "real Spoor witnesses on loopback for tests"},
	"internal/trilliantest": {[]string{pebble, nats}, "a real Trillian for tests"},
	"internal/memtree":      {[]string{mod, pebble, nats, prometheus, trillian}, "a Merkle tree in memory for tests (x/mod's tlog)"},
	"internal/layering":     {[]string{mod}, "this test"},
	"deploy":                {[]string{mod + "ledger", pebble, trillian}, "deployment files and their checks"},
	"deploy/natsaccounts":   {[]string{mod + "ledger", pebble, trillian}, "the NATS accounts file from the covenant"},
	"gateway": {[]string{mod + "ledger", mod + "verifier", mod + "witness", pebble, trillian, chromedp},
		"the HTTP gateway an organisation runs: it holds party keys and signs, so it is a publisher like events/natsbus's and reaches the ledger only over the bus (and the public covenant list over HTTP); nothing of the ledger, the verifier side or a store"},
	"witness": {[]string{mod + "ledger", mod + "events/natsbus", pebble, nats, trillian},
		"the tlog-witness server, run by others than the operator: nothing of the ledger, its store or its bus"},
	"witness/client": {[]string{mod + "ledger", mod + "events/natsbus", pebble, nats, trillian},
		"the client that asks a policy's witnesses for cosignatures: the ledger hands it checkpoints and proofs, it imports nothing of the ledger, its store or its bus"},
	"desk": {[]string{mod + "ledger", mod + "events/natsbus", mod + "internal/natsserver", pebble, nats, trillian, chromedp},
		"the privacy desk's screen, run on the desk's own machine: it talks to the ledger over HTTP with the API's bodies from verifier/deskapi, and imports nothing of the ledger, no store, bus or Merkle backend"},
	"verifier/webhook": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/audit", mod + "verifier/report", pebble, nats, prometheus, trillian, chromedp},
		"what a webhook receiver imports: the notification CloudEvents, their bodies and the RFC 9421 signature check; nothing of Spoor at all beyond the standard library and the CloudEvents SDK"},
	"ledger/notify": {[]string{mod + "ledger/ingest", mod + "ledger/httpapi", mod + "ledger/pebblestore", mod + "ledger/trillianlog", mod + "ledger/replication", pebble, nats, trillian},
		"the webhook sender: a durable outbox in the data folder, signed deliveries with retries, a dead-letter list; the wire format from verifier/webhook; no store backend or bus"},
	"verifier/deskapi": {[]string{mod + "ledger", mod + "events/natsbus", mod + "verifier/audit", mod + "verifier/report", pebble, nats, prometheus, trillian, chromedp},
		"the bodies of the ledger's desk routes: one definition for the server, the desk's workflows, spoor inzage and the desk's screen; formats only"},
	"dashboard": {[]string{mod + "ledger", mod + "ledger/ingest", mod + "ledger/pebblestore", mod + "ledger/trillianlog", mod + "ledger/replication", mod + "ledger/witnessing", mod + "ledger/httpapi", mod + "ledger/answer", mod + "events/natsbus", mod + "internal/natsserver", mod + "desk", pebble, nats, trillian, chromedp},
		"the FG's console, run on the FG's own machine: it reads the ledger over HTTP through the audit engine and holds no store, bus or Merkle backend"},
	"dashboard/index": {[]string{mod + "ledger", mod + "events/natsbus", mod + "internal/natsserver", mod + "desk", mod + "dashboard", pebble, nats, trillian, chromedp},
		"the FG's own verified copy of the log: three append-only files of its own, fed over HTTP, read by the audit engine; no store, bus or Merkle backend of the ledger (an erasure overwrites bytes in place, which Pebble would not)"},
	"cmd/spoor": {nil, "flags, config and wiring: may import anything"},
}

// mayUseTestHelpers lists the non-test packages allowed to import a test
// helper: the suites, which exist for tests, and testledger, which builds
// on testenv.
var mayUseTestHelpers = map[string]bool{"ledger/logtest": true, "ledger/replicationtest": true, "internal/testledger": true}

func TestLayering(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = "go"
	}
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 15 {
		t.Fatalf("go list listed only %d packages", len(lines))
	}
	seen := map[string]bool{}
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		seen[pkg] = true
		r, ok := rules[pkg]
		if !ok {
			t.Errorf("package %s has no layering rule: add one here and place it in docs/architecture.md", pkg)
			continue
		}
		for _, dep := range fields[1:] {
			if slices.Contains(leaves, dep) {
				continue
			}
			for _, bad := range r.forbid {
				if strings.HasPrefix(dep, bad) && dep != fields[0] {
					t.Errorf("%s depends on %s (%s)", pkg, dep, r.why)
				}
			}
			for _, h := range testHelpers {
				if dep == h && !mayUseTestHelpers[pkg] {
					t.Errorf("%s depends on the test helper %s; only tests may", pkg, dep)
				}
			}
		}
	}
	for pkg := range rules {
		if !seen[pkg] {
			t.Errorf("the rule for %s names a package that no longer exists", pkg)
		}
	}
}
