package replicationtest

// The suite catches a stream that breaks a clause: each fault below is run
// in a child process (the suite fails through *testing.T), whose output
// must name the failing clause's test.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
)

// faulty is MemStream with one deliberate fault.
type faulty struct {
	*MemStream
	fault string
}

func (f faulty) Publisher() ledger.Replicator { return faultyPublisher{f} }

type faultyPublisher struct{ f faulty }

func (p faultyPublisher) Replicate(ctx context.Context, out *ledger.ReplicaOut) error {
	m := p.f.MemStream
	switch p.f.fault {
	case "no-fence": // appends wherever the stream is
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, part := range out.Parts {
			m.parts = append(m.parts, bytes.Clone(part))
		}
		for id, raw := range out.DataKeys {
			m.keys[id] = raw
		}
		return nil
	case "drop-part": // acknowledges a split batch but loses its last part
		if len(out.Parts) > 1 {
			o := *out
			o.Parts = o.Parts[:len(o.Parts)-1]
			if err := (memPublisher{m}).Replicate(ctx, &o); err != nil {
				return err
			}
			m.mu.Lock()
			m.parts = append(m.parts, []byte("lost"))
			m.mu.Unlock()
			return nil
		}
	}
	return memPublisher{m}.Replicate(ctx, out)
}

func (f faulty) CatchUp(ctx context.Context, l *ledger.Ledger, keys *ledger.DataKeys) error {
	m := f.MemStream
	switch f.fault {
	case "no-resume", "no-divergence-check": // applies, never publishes the outbox or checks the store
		m.mu.Lock()
		last := uint64(len(m.parts))
		m.mu.Unlock()
		if f.fault == "no-divergence-check" && l.ReplicaPosition() > last {
			return nil
		}
		if f.fault == "no-resume" {
			for seq := l.ReplicaPosition() + 1; seq <= last; seq++ {
				if _, err := l.Apply(ctx, seq, m.parts[seq-1]); err != nil {
					return err
				}
			}
			l.SkipIncomplete(last)
			return nil
		}
	case "stale": // stops one part short of the end
		m.mu.Lock()
		saved := m.parts
		if len(m.parts) > 0 {
			m.parts = m.parts[:len(m.parts)-1]
		}
		m.mu.Unlock()
		err := m.CatchUp(ctx, l, keys)
		m.mu.Lock()
		m.parts = saved
		m.mu.Unlock()
		return err
	}
	return m.CatchUp(ctx, l, keys)
}

const faultEnv = "SPOOR_REPLICATIONTEST_FAULT"

func TestFaultsAreCaught(t *testing.T) {
	if fault := os.Getenv(faultEnv); fault != "" {
		Run(t, Harness{Stores: testledger.MemStores, New: func(*testing.T, string) Stream {
			return faulty{NewMemStream(), fault}
		}})
		return
	}
	for _, c := range []struct{ fault, clause string }{
		{"no-fence", "Fence"},
		{"drop-part", "Apply"},
		{"stale", "Promote"},
		{"no-resume", "Outbox"},
		{"no-divergence-check", "Diverged"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFaultsAreCaught$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), faultEnv+"="+c.fault)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("the suite passes a stream with the fault %s", c.fault)
			continue
		}
		if !strings.Contains(string(out), "--- FAIL: TestFaultsAreCaught/"+c.clause+" ") {
			t.Errorf("the fault %s did not fail the %s test:\n%s", c.fault, c.clause, out)
		}
	}
}
