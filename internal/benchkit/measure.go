package benchkit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// began and ended: other work on the machine lowers every rate, and
	// the CPU costs per event much less.
	LoadStart float64 `json:"load_avg_start"`
	LoadEnd   float64 `json:"load_avg_end"`
}

// loadAvg returns the 1-minute load average, or 0 where unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func thisMachine() Machine {
	m := Machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		LoadStart:  loadAvg(),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// window measures one timed section: wall time and the CPU time of the
// whole process (every goroutine, the embedded NATS server included), so a
// stage's CPU cost per event counts all the work it causes.
type window struct {
	start time.Time
	cpu   time.Duration
}

func startWindow() window { return window{start: time.Now(), cpu: processCPU()} }

// stop returns the wall and CPU time since start.
func (w window) stop() (wall, cpu time.Duration) {
	return time.Since(w.start), processCPU() - w.cpu
}

// peakRSS reads the process's high-water mark of resident memory (VmHWM)
// from /proc/self/status; 0 where there is no such file.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil {
				return n << 10
			}
		}
	}
	return 0
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("couldn't sum the file sizes in %s: %w", dir, err)
	}
	return n, nil
}

// Latency is a distribution of durations in milliseconds.
type Latency struct {
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	Maxms   float64 `json:"max_ms"`
}

func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return Latency{Samples: len(s), P50ms: q(0.50), P99ms: q(0.99), Maxms: q(1)}
}

// progress prints one line on stderr while a phase runs: its name, how
// far it is and its rate. On a terminal the line is rewritten in place;
// elsewhere (CI logs) a line is written every few seconds.
type progress struct {
	w    io.Writer
	tty  bool
	done atomic.Int64

	mu    sync.Mutex
	name  string
	total int64
	start time.Time
	last  time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	// every is how often a line is written; 0 means every 5 s, or 250 ms
	// on a terminal.
	every time.Duration
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// phase starts reporting a new phase of total units (0: unknown).
func (p *progress) phase(name string, total int64) {
	if p == nil || p.w == nil {
		return
	}
	p.end()
	p.mu.Lock()
	p.name, p.total, p.start, p.last = name, total, time.Now(), time.Now()
	p.done.Store(0)
	// The goroutine keeps its own copy: end sets p.stop to nil before it
	// closes the channel, and a select on p.stop read after that would
	// wait on a nil channel for ever (a bench once hung so).
	stop := make(chan struct{})
	p.stop = stop
	p.mu.Unlock()
	interval := 5 * time.Second
	if p.tty {
		interval = 250 * time.Millisecond
	}
	if p.every > 0 {
		interval = p.every
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.print(false)
			case <-stop:
				p.print(true)
				return
			}
		}
	}()
}

func (p *progress) add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

func (p *progress) set(n int64) {
	if p != nil {
		p.done.Store(n)
	}
}

// end finishes the current phase's line.
func (p *progress) end() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		p.wg.Wait()
	}
}

func (p *progress) print(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := p.done.Load()
	el := time.Since(p.start)
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el.Seconds()
	}
	line := fmt.Sprintf("bench: %-28s %9d", p.name, done)
	if p.total > 0 {
		line += fmt.Sprintf("/%d (%3.0f%%)", p.total, 100*float64(done)/float64(p.total))
	}
	line += fmt.Sprintf("  %8.0f/s  %5.1fs", rate, el.Seconds())
	switch {
	case p.tty && final:
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	default:
		fmt.Fprintln(p.w, line)
	}
}

// profileAs labels the calling goroutine, and every goroutine it starts
// until the returned function is called, with bench=phase, so that a
// --cpuprofile of the whole run can be cut by phase (go tool pprof
// -tagfocus bench=inzage). Pebble's own background work is not labelled.
func profileAs(ctx context.Context, phase string) (restore func()) {
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("bench", phase)))
	return func() { pprof.SetGoroutineLabels(ctx) }
}

// warmupBytesPerEvent is about what the log core writes per entry, all
// told (the envelope table, the WAL, flushes and compactions of the
// indices).
const warmupBytesPerEvent = 2 << 10

// warmPageCache writes a file of n bytes in dir, syncs it and removes it,
// and says how long that took. On this kind of VM the first write to a page
// the guest has not used lately costs several times a later one (the host
// backs the page on first touch, and hands freed pages back after a while):
// 2 GB written to a new file took 5.8 s of system CPU, the same again right
// after 2.0-2.2 s. A ledger that has run for a while writes into recycled
// pages; without this, the log core, the first to write gigabytes, would
// pay for the VM's warm-up (about 3 µs per entry, measured as a second log
// core run on the same code being 15% faster than the first).
func warmPageCache(dir string, n int64) (float64, error) {
	start := time.Now()
	path := filepath.Join(dir, "warm-up.bin")
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("page-cache warm-up: %w", err)
	}
	defer os.Remove(path)
	buf := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			f.Close()
			return 0, fmt.Errorf("page-cache warm-up: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("page-cache warm-up: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("page-cache warm-up: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return 0, fmt.Errorf("page-cache warm-up: %w", err)
	}
	return time.Since(start).Seconds(), nil
}
