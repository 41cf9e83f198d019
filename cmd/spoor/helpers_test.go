package main

// Helpers shared by the tests that run spoor as a separate process: the
// crash test builds the real binary and drives `spoor serve` with it, the
// way an operator's supervisor would, so that a SIGKILL hits a whole
// process (embedded NATS, Pebble and all) and nothing of it survives but
// what it wrote to disk.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/crashpoint"
)

// buildState is the spoor binary built once per test binary run, in a
// folder that cleanupM removes when the tests end.
var buildState struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// cleanupM runs the tests and then removes what the helpers left behind;
// testscript.Main takes it in place of *testing.M.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	if buildState.dir != "" {
		_ = os.RemoveAll(buildState.dir)
	}
	return code
}

// buildSpoor builds ./cmd/spoor, with the crash points armed, with the go
// command that runs the tests and returns the binary's path. It builds once; later calls reuse the binary.
// The binary is built without the race detector even under -race: the crash
// test wants the server at its normal speed, and a race report would only
// show up in the server's log.
func buildSpoor(t testing.TB) string {
	t.Helper()
	buildState.once.Do(func() {
		goCmd, err := goTool()
		if err != nil {
			buildState.err = err
			return
		}
		dir, err := os.MkdirTemp("", "spoor-bin-")
		if err != nil {
			buildState.err = fmt.Errorf("couldn't make a folder for the binary: %w", err)
			return
		}
		buildState.dir = dir
		bin := filepath.Join(dir, "spoor")
		// The crash tests kill this binary at named points: the switch
		// exists only with the crashpoints tag (internal/crashpoint).
		cmd := exec.Command(goCmd, "build", "-tags", crashpoint.Tag, "-o", bin, "github.com/spoor-ledger/spoor/cmd/spoor")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildState.err = fmt.Errorf("go build ./cmd/spoor: %w\n%s", err, out)
			return
		}
		buildState.bin = bin
	})
	if buildState.err != nil {
		t.Fatal(buildState.err)
	}
	return buildState.bin
}

// goTool finds the go command: the one in GOROOT when go test set it, else
// the one on PATH.
func goTool() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the crash test builds spoor and needs the go command: %w", err)
	}
	return p, nil
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process could take it before spoor does; on a test machine
// that is rare enough, and the failure would be a clear "address in use".
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := pickAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func pickAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("couldn't find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("couldn't release port %s: %w", addr, err)
	}
	return addr, nil
}

// serveProc runs `spoor serve` as a child process, again and again on the
// same data folder and ports. Its stdout and stderr are appended to one log
// file, each run headed by a line naming it, which the test prints when it
// fails.
type serveProc struct {
	bin      string
	data     string
	httpAddr string
	natsAddr string
	logPath  string
	extra    []string // more serve flags

	starts int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
	state  *os.ProcessState
}

func newServeProc(t testing.TB, bin, dir string, extra ...string) *serveProc {
	t.Helper()
	s := &serveProc{
		bin:      bin,
		data:     filepath.Join(dir, "data"),
		httpAddr: freeAddr(t),
		natsAddr: freeAddr(t),
		logPath:  filepath.Join(dir, "serve.log"),
		extra:    extra,
	}
	t.Cleanup(func() {
		if s.running() {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("spoor serve output (%s), last lines:\n%s", s.logPath, s.logTail(120))
		}
	})
	return s
}

// url returns the ledger's HTTP base URL.
func (s *serveProc) url() string { return "http://" + s.httpAddr }

// natsURL returns the embedded NATS server's URL.
func (s *serveProc) natsURL() string { return "nats://" + s.natsAddr }

// start starts the next run. crashpoint, when not empty, is the value of
// SPOOR_CRASHPOINT (name:N) for this run.
func (s *serveProc) start(crashpoint string) error {
	if s.running() {
		return errors.New("spoor serve is still running")
	}
	s.starts++
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't open the serve log: %w", err)
	}
	fmt.Fprintf(logf, "=== run %d, SPOOR_CRASHPOINT=%q, %s\n", s.starts, crashpoint, time.Now().UTC().Format(time.RFC3339Nano))
	args := append([]string{"serve", "--data", s.data, "--http", s.httpAddr, "--nats-listen", s.natsAddr}, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "SPOOR_CRASHPOINT="+crashpoint)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("couldn't start spoor serve: %w", err)
	}
	s.cmd, s.state = cmd, nil
	exited := make(chan struct{})
	s.exited = exited
	go func() {
		_ = cmd.Wait()
		s.state = cmd.ProcessState
		logf.Close()
		close(exited)
	}()
	return nil
}

// running reports whether the current process has not exited yet.
func (s *serveProc) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// waitReady polls GET /healthz until it answers 200. It fails when the
// process exits first (errExited) or the timeout passes.
func (s *serveProc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(s.url() + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w before it was ready (%s)", errExited, s.state)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("spoor serve was not ready within %s", timeout)
		}
	}
}

// errExited means the serve process exited when the test did not expect it.
var errExited = errors.New("spoor serve exited")

// waitExit waits for the process to exit and returns its state.
func (s *serveProc) waitExit(timeout time.Duration) (*os.ProcessState, error) {
	select {
	case <-s.exited:
		return s.state, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("spoor serve did not exit within %s", timeout)
	}
}

// kill kills the process with SIGKILL, as a power cut or the OOM killer
// would, and reaps it.
func (s *serveProc) kill() error {
	if !s.running() {
		return fmt.Errorf("%w before the test killed it (%s)", errExited, s.state)
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("couldn't kill spoor serve: %w", err)
	}
	<-s.exited
	return nil
}

// interrupt stops the process as Ctrl-C does and checks that it exited
// cleanly.
func (s *serveProc) interrupt(timeout time.Duration) error {
	if !s.running() {
		return fmt.Errorf("%w before the test stopped it (%s)", errExited, s.state)
	}
	// Go's HTTP client may leave a connection it dialled but never used in
	// its idle pool; the server's Shutdown waits for such a connection
	// until it is 5 s old (golang/go#21204), longer than serve allows, and
	// Ctrl-C would then exit 1. Closing the test's idle connections first
	// keeps this check about the ledger, not about the client's pool.
	http.DefaultClient.CloseIdleConnections()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("couldn't interrupt spoor serve: %w", err)
	}
	st, err := s.waitExit(timeout)
	if err != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		return err
	}
	if !st.Success() {
		return fmt.Errorf("spoor serve did not stop cleanly on Ctrl-C: %s", st)
	}
	return nil
}

// killedBySIGKILL reports whether a process ended by SIGKILL.
func killedBySIGKILL(st *os.ProcessState) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// logTail returns the last n lines of the serve log.
func (s *serveProc) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(couldn't read the log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// runLogContains reports whether the log of the latest run holds sub.
func (s *serveProc) runLogContains(sub string) bool {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return false
	}
	if i := bytes.LastIndex(b, []byte("=== run ")); i >= 0 {
		b = b[i:]
	}
	return bytes.Contains(b, []byte(sub))
}

// sleepCtx sleeps for d or until ctx ends, and reports whether it slept the
// whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
