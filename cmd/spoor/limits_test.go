package main

// TestServeResourceLimits is the resource test of issue 17 (item 4): a real
// `spoor serve` (the built binary, a child process) runs under a file limit
// of 256, and one loopback address holds 300 idle keep-alive connections
// and 30 requests whose bodies never finish. While they are held, the
// ledger must stay reachable: /healthz on the operations listener, a tile
// from another client address, a party's publish and receipt over NATS,
// and no "too many open files" anywhere in its log. Before the limits,
// those connections took every file the process had: accept failed, NATS
// refused parties and /healthz went silent.
//
// What happens when Pebble is denied a file all the same (fail-stop, and
// nothing lost after a restart) is TestFileLimitIsFailStop in package
// ledger: in serve the reserve exists precisely so that Pebble is never
// denied, so that test takes the files away itself.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/verifier"
)

// The flood of the resource test, all from 127.0.0.1.
const (
	floodFileLimit = 256
	floodIdle      = 300 // keep-alive connections that made one request and wait
	floodBodies    = 30  // requests whose body never finishes
)

func TestServeResourceLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a child process under a lowered file limit; skipped with -short")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	// The shell lowers both the soft and the hard limit, then becomes
	// spoor serve (same process id, so signals reach it). Lowering only
	// the soft limit would not do: Go raises it to the hard one at start.
	wrapper := filepath.Join(dir, "spoor-limited")
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 97\nexec %q \"$@\"\n", floodFileLimit, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	opsAddr := freeAddr(t)
	srv := newServeProc(t, wrapper, dir, "--ops-http", opsAddr)
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(secReady); err != nil {
		t.Fatal(err)
	}
	if !srv.runLogContains(fmt.Sprintf("file_limit=%d ", floodFileLimit)) {
		t.Fatalf("serve does not log the file limit of %d it runs under", floodFileLimit)
	}
	logged := regexp.MustCompile(`http_max_conns=(\d+) http_max_conns_per_addr=(\d+)`).FindStringSubmatch(srv.logTail(200))
	if logged == nil {
		t.Fatal("serve does not log its HTTP connection limits")
	}
	httpMax, _ := strconv.Atoi(logged[1])
	perAddr, _ := strconv.Atoi(logged[2])
	if perAddr == 0 || perAddr >= httpMax || perAddr >= floodIdle {
		t.Fatalf("limits %d per address, %d in all: the test needs a limit per address below both", perAddr, httpMax)
	}
	t.Logf("HTTP: %d connections in all, %d per address", httpMax, perAddr)

	// A party's publisher, connected before the flood as a party's system
	// would be.
	m, err := demo.Load(filepath.Join(srv.data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 17, 300)
	if err != nil {
		t.Fatal(err)
	}
	party := m.Signed.Covenant.Parties[0].ID
	nc, err := nats.Connect(srv.natsURL(), nats.Name("spoor-limits-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := natsbus.NewPublisher(js, m.Parties[party])
	if err != nil {
		t.Fatal(err)
	}

	// The flood: each connection, once the server closes it, is opened
	// again a second later, so the pressure lasts while the checks run.
	ctx, stopFlood := context.WithCancel(t.Context())
	var flood sync.WaitGroup
	var opened, held atomic.Int64
	hold := func(req string) {
		defer flood.Done()
		var d net.Dialer
		for ctx.Err() == nil {
			c, err := d.DialContext(ctx, "tcp", srv.httpAddr)
			if err == nil {
				opened.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				if _, err := io.WriteString(c, req); err == nil {
					held.Add(1)
					// Read whatever comes (one answer to the GET) until
					// the server closes the connection.
					_, _ = io.Copy(io.Discard, c)
					held.Add(-1)
				}
				stop()
				c.Close()
			}
			sleepCtx(ctx, time.Second)
		}
	}
	idleReq := "GET /checkpoint HTTP/1.1\r\nHost: spoor\r\n\r\n"
	bodyReq := "POST /v1/inzage HTTP/1.1\r\nHost: spoor\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"bsn\":"
	for range floodIdle {
		flood.Add(1)
		go hold(idleReq)
	}
	for range floodBodies {
		flood.Add(1)
		go hold(bodyReq)
	}
	defer func() { stopFlood(); flood.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for opened.Load() < floodIdle+floodBodies {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d flood connections were opened", opened.Load(), floodIdle+floodBodies)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("flood: %d connections opened, %d held open now", opened.Load(), held.Load())

	// /healthz on the operations listener, within a second.
	ops := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	began := time.Now()
	resp, err := ops.Get("http://" + opsAddr + "/healthz")
	if err != nil {
		t.Errorf("/healthz on the operations listener during the flood: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz on the operations listener during the flood: %s", resp.Status)
		}
		t.Logf("/healthz on the operations listener: %s in %s", resp.Status, time.Since(began).Round(time.Millisecond))
	}

	// A party publishes and gets its receipt within 5 s.
	pctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	d := nextBy(t, gen, party)
	began = time.Now()
	pr, err := pub.Publish(pctx, d)
	if err != nil {
		t.Fatalf("a party's publish during the flood: %v", err)
	}
	r, err := pub.WaitReceipt(pctx, d.ID, pr.EnvelopeHash)
	if err != nil {
		t.Fatalf("the receipt during the flood: %v", err)
	}
	if r.Status != natsbus.ReceiptCommitted {
		t.Fatalf("the receipt during the flood: status %s", r.Status)
	}
	t.Logf("publish and receipt during the flood: leaf %d in %s", r.LeafIndex, time.Since(began).Round(time.Millisecond))

	// A tile from another client address: the flood's address holds its
	// limit, the listener has room for others. (On Linux every 127/8
	// address is this machine's.)
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	}}
	cp := getBody(t, other, srv.url()+"/checkpoint")
	keys, err := verifier.ParseLogKeys(readData(t, srv, "log.vkey"), readData(t, srv, "cosigner.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := verifier.OpenCheckpoint(cp, keys)
	if err != nil {
		t.Fatalf("the checkpoint fetched during the flood: %v", err)
	}
	if c.Size <= r.LeafIndex || c.Size >= 256 {
		t.Fatalf("checkpoint of size %d after leaf %d: the test reads one partial tile", c.Size, r.LeafIndex)
	}
	tile := getBody(t, other, fmt.Sprintf("%s/tile/0/000.p/%d", srv.url(), c.Size))
	if len(tile) != 32*int(c.Size) {
		t.Fatalf("tile 0/000.p/%d: %d bytes, want %d", c.Size, len(tile), 32*c.Size)
	}

	// The limit per address is what kept room: the flood's address was
	// refused connections beyond it.
	metrics := string(getBody(t, ops, "http://"+opsAddr+"/metrics"))
	refused := regexp.MustCompile(`(?m)^spoor_http_connections_refused_total\{listener="api"\} (\d+)`).FindStringSubmatch(metrics)
	if refused == nil || refused[1] == "0" {
		t.Errorf("no HTTP connection was refused for its address during the flood (metrics: %v)", refused)
	}

	if srv.runLogContains("too many open files") {
		t.Error(`the serve log has "too many open files"`)
	}
	if !srv.running() {
		t.Fatal("spoor serve stopped during the flood")
	}
	stopFlood()
	flood.Wait()
	if err := srv.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if srv.runLogContains("too many open files") {
		t.Error(`the serve log has "too many open files"`)
	}
}

// getBody fetches url with hc and returns the body of a 200 answer.
func getBody(t *testing.T, hc *http.Client, url string) []byte {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s during the flood: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(bufio.NewReader(resp.Body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s during the flood: %s, %v", url, resp.Status, err)
	}
	return b
}

// readData reads a file that serve wrote in its data folder.
func readData(t *testing.T, srv *serveProc, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.data, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestPlanFiles(t *testing.T) {
	cases := []struct {
		limit         int
		flags         limitFlags
		embedded, ops bool
		pebble, nats  int
		http          int
		refused       bool
	}{
		{limit: 256, embedded: true, ops: true, pebble: 80, nats: 32, http: 80},
		{limit: 1024, embedded: true, ops: true, pebble: 128, nats: 128, http: 704},
		{limit: 65536, embedded: true, ops: true, pebble: 1000, nats: 1024, http: maxHTTPConns},
		{limit: 256, embedded: false, ops: false, pebble: 80, nats: 0, http: 128},
		{limit: 1024, flags: limitFlags{maxConns: 100}, embedded: true, ops: true, pebble: 128, nats: 128, http: 100},
		{limit: 1024, flags: limitFlags{natsMaxConns: 600}, embedded: true, ops: true, pebble: 128, nats: 600, http: 232},
		// Too small a limit, or a flag that does not fit, stops serve.
		{limit: 180, embedded: true, ops: true, refused: true},
		{limit: 1024, flags: limitFlags{maxConns: 705}, embedded: true, ops: true, refused: true},
		{limit: 1024, flags: limitFlags{natsMaxConns: 2000}, embedded: true, ops: true, refused: true},
	}
	for _, c := range cases {
		b, err := planFiles(c.limit, &c.flags, c.embedded, c.ops)
		if c.refused {
			if err == nil {
				t.Errorf("limit %d, %+v: planned %+v, want a refusal", c.limit, c.flags, b)
			}
			continue
		}
		if err != nil {
			t.Errorf("limit %d, %+v: %v", c.limit, c.flags, err)
			continue
		}
		if b.Pebble != c.pebble || b.NATS != c.nats || b.HTTP != c.http {
			t.Errorf("limit %d, %+v: Pebble %d, NATS %d, HTTP %d; want %d, %d, %d", c.limit, c.flags, b.Pebble, b.NATS, b.HTTP, c.pebble, c.nats, c.http)
		}
		if b.reserve()+b.HTTP > c.limit {
			t.Errorf("limit %d: %+v gives out more than the limit", c.limit, b)
		}
	}
}
