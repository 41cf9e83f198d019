package main

// Resource limits of spoor serve: the HTTP servers' timeouts, how many
// connections they hold (per client address and in all), and how the
// process's file limit is shared between HTTP, the embedded NATS server and
// Pebble.
//
// HTTP connections, NATS connections, Pebble's tables and JetStream's
// message blocks all take file descriptors from the one RLIMIT_NOFILE of
// the process. Without limits a few hundred idle HTTP connections were
// enough to use them all: accept failed with "too many open files", parties
// could no longer connect to NATS, /healthz stopped answering and Pebble
// could not open a table (docs/security.md, "Resource limits").

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"golang.org/x/net/netutil"
)

// The defaults of the limit flags; docs/operations.md ("Resource limits")
// explains each.
const (
	// defaultReadTimeout bounds reading a whole request, body included: a
	// body that never ends holds its connection this long at most. Spoor's
	// request bodies are small JSON documents.
	defaultReadTimeout = 30 * time.Second
	// defaultReadHeaderTimeout bounds reading a request's headers.
	defaultReadHeaderTimeout = 10 * time.Second
	// defaultWriteTimeout bounds handling a request and writing its
	// answer; the largest answers (a page of /v1/entries, an inzage
	// bundle) take well under it on a slow link.
	defaultWriteTimeout = 60 * time.Second
	// defaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request.
	defaultIdleTimeout = 60 * time.Second
	// defaultMaxHeaderBytes bounds a request's header block (Go's default
	// is 1 MiB); Spoor's requests carry a bearer token and a few standard
	// headers.
	defaultMaxHeaderBytes = 32 << 10
	// defaultMaxConnsPerAddr is how many connections one client address
	// may hold on the HTTP listener. Behind a reverse proxy every client
	// has the proxy's address: set 0 (off) there and limit at the proxy.
	defaultMaxConnsPerAddr = 32
	// defaultNATSAuthTimeout is how long a client of the embedded NATS
	// server has to authenticate (with --nats-users) before it is
	// disconnected.
	defaultNATSAuthTimeout = 2 * time.Second
	// defaultOpsHTTP is the operations listener (/healthz and /metrics
	// only): loopback, beside the default HTTP port.
	defaultOpsHTTP = "127.0.0.1:8081"
)

// The file budget: what of the file limit is kept for what. planFiles
// explains the split.
const (
	// processFiles is kept for the process itself: its standard streams,
	// the runtime's epoll and pipes, JetStream's message blocks and state
	// files, a backup in progress, the data keys, Trillian's connection.
	processFiles = 48
	// opsConns is how many connections the operations listener holds.
	opsConns = 16
	// maxHTTPConns caps the derived HTTP limit: each connection costs some
	// 20 KiB of memory, and a file limit of a million should not mean a
	// million connections.
	maxHTTPConns = 4096
	// pebbleMinFiles is the least Pebble is given: it keeps at least 64
	// tables open whatever MaxOpenFiles says, plus 10 other files.
	pebbleMinFiles = 80
	// minHTTPConns is the least HTTP limit serve starts with.
	minHTTPConns = 16
)

// limitFlags are the resource-limit flags of spoor serve.
type limitFlags struct {
	readTimeout     time.Duration
	writeTimeout    time.Duration
	idleTimeout     time.Duration
	maxHeaderBytes  int
	maxConns        int
	maxConnsPerAddr int
	opsHTTP         string
	natsMaxConns    int
	natsAuthTimeout time.Duration
}

func (lf *limitFlags) add(fl *pflag.FlagSet) {
	fl.DurationVar(&lf.readTimeout, "http-read-timeout", defaultReadTimeout, "most time to read one HTTP request, body included")
	fl.DurationVar(&lf.writeTimeout, "http-write-timeout", defaultWriteTimeout, "most time to answer one HTTP request, from the end of its headers")
	fl.DurationVar(&lf.idleTimeout, "http-idle-timeout", defaultIdleTimeout, "how long an idle keep-alive HTTP connection is kept")
	fl.IntVar(&lf.maxHeaderBytes, "http-max-header-bytes", defaultMaxHeaderBytes, "largest HTTP request header block in bytes")
	fl.IntVar(&lf.maxConns, "http-max-conns", 0, fmt.Sprintf("most HTTP connections at once; 0: derived from the file limit (ulimit -n) minus the reserve for NATS and Pebble, at most %d; more waits in the kernel's queue", maxHTTPConns))
	fl.IntVar(&lf.maxConnsPerAddr, "http-max-conns-per-addr", defaultMaxConnsPerAddr, "most HTTP connections from one client address; more are closed at once; 0: no limit (behind a reverse proxy, where every client has the proxy's address)")
	fl.StringVar(&lf.opsHTTP, "ops-http", defaultOpsHTTP, `operations listener, plain HTTP with /healthz and /metrics only, with its own connections; "": none. When the default port is taken, serve goes on without it (and says so); a port given here must be free`)
	fl.IntVar(&lf.natsMaxConns, "nats-max-connections", 0, "max_connections of the embedded NATS server; 0: derived from the file limit (an eighth of it, 16 to 1024)")
	fl.DurationVar(&lf.natsAuthTimeout, "nats-auth-timeout", defaultNATSAuthTimeout, "with --nats-users: how long a NATS client has to authenticate before the embedded server disconnects it")
}

// check refuses values that cannot work, before anything starts.
func (lf *limitFlags) check() error {
	if lf.readTimeout <= 0 || lf.writeTimeout <= 0 || lf.idleTimeout <= 0 || lf.natsAuthTimeout <= 0 {
		return errors.New("--http-read-timeout, --http-write-timeout, --http-idle-timeout and --nats-auth-timeout must be positive")
	}
	if lf.maxHeaderBytes < 4096 {
		return fmt.Errorf("--http-max-header-bytes %d: give at least 4096", lf.maxHeaderBytes)
	}
	if lf.maxConns < 0 || lf.maxConnsPerAddr < 0 || lf.natsMaxConns < 0 {
		return errors.New("--http-max-conns, --http-max-conns-per-addr and --nats-max-connections cannot be negative")
	}
	return nil
}

// fileBudget is how the file limit is shared. Every field is a number of
// file descriptors.
type fileBudget struct {
	FileLimit int // RLIMIT_NOFILE of the process
	Process   int // processFiles
	Pebble    int // Pebble's MaxOpenFiles (its tables, WAL, MANIFEST, lock)
	NATS      int // max_connections of the embedded NATS server; 0 with --nats
	Ops       int // the operations listener's connections; 0 without it
	HTTP      int // the HTTP listener's connections
}

// reserve is what HTTP never gets.
func (b fileBudget) reserve() int { return b.Process + b.Pebble + b.NATS + b.Ops }

// planFiles splits limit (the process's file limit):
//   - processFiles for the process itself;
//   - Pebble an eighth of the limit, 80 to 1000 (Pebble keeps at least 64
//     tables and 10 other files open, and defaults to 1000);
//   - the embedded NATS server --nats-max-connections, or an eighth of the
//     limit, 16 to 1024 (none with an external NATS: the ledger's one
//     connection is in processFiles);
//   - the operations listener opsConns;
//   - HTTP what remains, at most maxHTTPConns, or --http-max-conns when it
//     fits.
//
// With the limit of 256 that the resource test uses: 48 + 80 + 32 + 16 kept,
// 80 for HTTP. Too small a limit is refused with the numbers, rather than
// run a ledger whose parts starve each other.
func planFiles(limit int, lf *limitFlags, embeddedNATS, ops bool) (fileBudget, error) {
	b := fileBudget{FileLimit: limit, Process: processFiles, Pebble: min(max(limit/8, pebbleMinFiles), 1000)}
	if embeddedNATS {
		b.NATS = lf.natsMaxConns
		if b.NATS == 0 {
			b.NATS = min(max(limit/8, 16), 1024)
		}
	}
	if ops {
		b.Ops = opsConns
	}
	room := limit - b.reserve()
	switch {
	case lf.maxConns > 0 && lf.maxConns > room:
		return b, fmt.Errorf("--http-max-conns %d does not fit the file limit (ulimit -n) %d: %d are kept for Pebble (%d), NATS (%d), the operations listener (%d) and the process (%d); raise the limit or lower the flag",
			lf.maxConns, limit, b.reserve(), b.Pebble, b.NATS, b.Ops, b.Process)
	case lf.maxConns > 0:
		b.HTTP = lf.maxConns
	case room < minHTTPConns:
		return b, fmt.Errorf("the file limit (ulimit -n) %d leaves %d HTTP connections after %d kept for Pebble (%d), NATS (%d), the operations listener (%d) and the process (%d); raise it to at least %d or lower --nats-max-connections",
			limit, max(room, 0), b.reserve(), b.Pebble, b.NATS, b.Ops, b.Process, b.reserve()+minHTTPConns)
	default:
		b.HTTP = min(room, maxHTTPConns)
	}
	return b, nil
}

// fileLimit returns the process's limit on open files. The Go runtime has
// already raised the soft limit to the hard one at start, so this is what
// the process can use.
func fileLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("couldn't read the file limit: %w", err)
	}
	if rl.Cur > 1<<30 {
		return 1 << 30, nil
	}
	return int(rl.Cur), nil
}

// logBudget says at start what each part may use.
func logBudget(log *slog.Logger, b fileBudget, lf *limitFlags) {
	log.Info("resource limits",
		"file_limit", b.FileLimit, "reserved_process", b.Process, "reserved_pebble", b.Pebble,
		"reserved_nats_connections", b.NATS, "reserved_ops_connections", b.Ops,
		"http_max_conns", b.HTTP, "http_max_conns_per_addr", lf.maxConnsPerAddr,
		"http_read_timeout", lf.readTimeout, "http_write_timeout", lf.writeTimeout,
		"http_idle_timeout", lf.idleTimeout, "http_max_header_bytes", lf.maxHeaderBytes,
		"nats_auth_timeout", lf.natsAuthTimeout)
}

// newHTTPServer is an http.Server with the limits' timeouts.
func newHTTPServer(h http.Handler, lf *limitFlags) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(defaultReadHeaderTimeout, lf.readTimeout),
		ReadTimeout:       lf.readTimeout,
		WriteTimeout:      lf.writeTimeout,
		IdleTimeout:       lf.idleTimeout,
		MaxHeaderBytes:    lf.maxHeaderBytes,
	}
}

// opsHandler serves only /healthz and /metrics of api.
func opsHandler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", api)
	mux.Handle("GET /metrics", api)
	return mux
}

// listenOps opens the operations listener. The default address is
// skipped with a warning when it is taken (a second ledger on the same
// machine); an address the operator gave must work.
func listenOps(lf *limitFlags, log *slog.Logger) (net.Listener, error) {
	if lf.opsHTTP == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", lf.opsHTTP)
	if err == nil {
		return ln, nil
	}
	if lf.opsHTTP == defaultOpsHTTP && errors.Is(err, syscall.EADDRINUSE) {
		log.Warn("the operations listener's default address is taken; running without it (give --ops-http)", "ops_http", lf.opsHTTP)
		return nil, nil
	}
	return nil, fmt.Errorf("couldn't listen for the operations HTTP on %s: %w", lf.opsHTTP, err)
}

// connMetrics counts the connections of the HTTP listeners.
type connMetrics struct {
	open    *prometheus.GaugeVec
	limit   *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spoor_http_connections_open", Help: "HTTP connections open now, per listener (api, ops).",
		}, []string{"listener"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spoor_http_connections_limit", Help: "Most HTTP connections a listener holds; more wait in the kernel's queue.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spoor_http_connections_refused_total", Help: "HTTP connections closed at once because their client address held its limit (--http-max-conns-per-addr).",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.open, m.limit, m.refused)
	return m
}

// limitListener limits ln to total connections at once (more wait in the
// kernel's accept queue, costing the process no file) and, when perAddr >
// 0, to perAddr from one client address (more are closed as soon as they
// are accepted).
//
// The total is netutil.LimitListener's. The limit per address is written
// here: netutil has none, and it must sit outside the total's, so that a
// connection it refuses gives its slot (and its file) back at once.
func limitListener(ln net.Listener, name string, total, perAddr int, m *connMetrics) net.Listener {
	m.limit.WithLabelValues(name).Set(float64(total))
	return &addrLimitListener{
		Listener: netutil.LimitListener(ln, total),
		perAddr:  perAddr,
		byAddr:   map[netip.Addr]int{},
		open:     m.open.WithLabelValues(name),
		refused:  m.refused.WithLabelValues(name),
	}
}

// addrLimitListener counts the open connections per client address.
type addrLimitListener struct {
	net.Listener
	perAddr int
	open    prometheus.Gauge
	refused prometheus.Counter

	mu     sync.Mutex
	byAddr map[netip.Addr]int
}

func (l *addrLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := clientKey(c.RemoteAddr())
		l.mu.Lock()
		if l.perAddr > 0 && l.byAddr[addr] >= l.perAddr {
			l.mu.Unlock()
			l.refused.Inc()
			_ = c.Close()
			continue
		}
		l.byAddr[addr]++
		l.mu.Unlock()
		l.open.Inc()
		return &addrLimitConn{Conn: c, l: l, addr: addr}, nil
	}
}

// clientKey is what the limit per address counts: an IPv4 address, or the
// /64 network of an IPv6 address (one subscriber or host usually has a
// whole /64, and could otherwise take a new address per connection).
func clientKey(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return addr
}

func (l *addrLimitListener) release(addr netip.Addr) {
	l.mu.Lock()
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
	l.mu.Unlock()
	l.open.Dec()
}

// addrLimitConn gives its address's slot back when closed (once: the
// HTTP server may close a connection more than once).
type addrLimitConn struct {
	net.Conn
	l    *addrLimitListener
	addr netip.Addr
	once sync.Once
}

func (c *addrLimitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
