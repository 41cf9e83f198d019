package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/spf13/cobra"
)

// TestMemoryLimit: the default and --memory-limit-mib set the runtime's
// soft limit; 0 removes it; a GOMEMLIMIT in the environment is left alone
// unless the flag is given; a negative value is refused.
func TestMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	log := slog.New(slog.DiscardHandler)
	run := func(args ...string) (int64, error) {
		t.Helper()
		var mib int
		cmd := &cobra.Command{Use: "x"}
		addMemoryLimitFlag(cmd.Flags(), &mib)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		err := applyMemoryLimit(cmd, mib, log)
		return debug.SetMemoryLimit(-1), err
	}

	t.Setenv("GOMEMLIMIT", "")
	if got, err := run(); err != nil || got != defaultMemoryLimitMiB<<20 {
		t.Fatalf("default: limit %d, err %v; want %d", got, err, defaultMemoryLimitMiB<<20)
	}
	if got, err := run("--memory-limit-mib", "700"); err != nil || got != 700<<20 {
		t.Fatalf("--memory-limit-mib 700: limit %d, err %v", got, err)
	}
	if got, err := run("--memory-limit-mib", "0"); err != nil || got != math.MaxInt64 {
		t.Fatalf("--memory-limit-mib 0: limit %d, err %v; want none", got, err)
	}
	if _, err := run("--memory-limit-mib", "-1"); err == nil {
		t.Fatal("a negative limit was accepted")
	}

	// The runtime read GOMEMLIMIT at start; here it stands for that value.
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetMemoryLimit(300 << 20)
	if got, err := run(); err != nil || got != 300<<20 {
		t.Fatalf("GOMEMLIMIT without the flag: limit %d, err %v; want GOMEMLIMIT's 300 MiB", got, err)
	}
	if got, err := run("--memory-limit-mib", "600"); err != nil || got != 600<<20 {
		t.Fatalf("GOMEMLIMIT with the flag: limit %d, err %v; want the flag's 600 MiB", got, err)
	}
}
