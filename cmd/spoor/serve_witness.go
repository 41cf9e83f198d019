package main

// Witnessing in `spoor serve`: when the covenant in force has a witness
// policy, the active ledger sends its published heads to the policy's
// witnesses and serves the checkpoint their quorum cosigned as /checkpoint
// (ledger/witnessing, ledger/witnessed.go). These are its flags.

import (
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
)

// witnessFlags are --witness-interval, --witness-timeout,
// --witness-max-age and --witness-fail-open.
type witnessFlags struct {
	interval time.Duration
	timeout  time.Duration
	maxAge   time.Duration
	failOpen bool
}

func (w *witnessFlags) add(fl *pflag.FlagSet) {
	fl.DurationVar(&w.interval, "witness-interval", witnessing.DefaultInterval, "with a witness policy in the covenant: the least time between two rounds of add-checkpoint requests to the witnesses (the newest head is sent; heads in between are skipped)")
	fl.DurationVar(&w.timeout, "witness-timeout", time.Second, "with a witness policy: how long to wait for one witness's answer")
	fl.DurationVar(&w.maxAge, "witness-max-age", witnessing.DefaultMaxAge, "with a witness policy: /healthz reports degraded when the log grew and nothing was witnessed for this long")
	fl.BoolVar(&w.failOpen, "witness-fail-open", false, "with a witness policy, during its roll-out only: serve the signed head as /checkpoint while no witnessed checkpoint is the newest, marked as not witnessed (Spoor-Witnessed: false; receipts say unwitnessed); inzage answers still wait for a witnessed checkpoint, since every verifier refuses one without; default: fail closed")
}

// witnesser makes the witnessing loop for l.
// onAlarm, if set, is told of each fork and rollback alarm (alarmer).
func (w *witnessFlags) witnesser(l *ledger.Ledger, log *slog.Logger, onAlarm func(kind, witness string, logSize, witnessSize uint64)) (*witnessing.Witnesser, error) {
	return witnessing.New(witnessing.Config{
		Ledger: l, Interval: w.interval, Timeout: w.timeout, MaxAge: w.maxAge, Logger: log, OnAlarm: onAlarm,
	})
}
