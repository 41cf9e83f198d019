//go:build crashpoints

package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Enabled reports whether this binary was built with the switch.
const Enabled = true

// EnvVar names the crash point to hit: name or name:N.
const EnvVar = "SPOOR_CRASHPOINT"

var (
	armed  string
	target int64
	hits   atomic.Int64
)

func init() {
	v := os.Getenv(EnvVar)
	if v == "" {
		return
	}
	name, n, ok := strings.Cut(v, ":")
	armed, target = name, 1
	if ok {
		if t, err := strconv.ParseInt(n, 10, 64); err == nil && t > 0 {
			target = t
		}
	}
}

// Hit kills the process if the armed crash point is name and this is its
// target hit. Without the variable it costs one comparison.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	if hits.Add(1) == target {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never return: the signal is on its way
	}
}
