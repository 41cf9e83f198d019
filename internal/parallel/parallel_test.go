package parallel

import (
	"sync/atomic"
	"testing"
)

// TestForCallsEachOnce: every index is called exactly once, whatever the
// number of calls, workers and calls per worker, including the serial
// path.
func TestForCallsEachOnce(t *testing.T) {
	for _, c := range []struct{ n, workers, per int }{
		{0, 0, 1}, {1, 0, 1}, {7, 4, 1}, {1000, 0, 64}, {1000, 3, 1}, {5, 8, 0}, {100, 1, 1},
	} {
		calls := make([]atomic.Int32, c.n)
		For(c.n, c.workers, c.per, func(i int) { calls[i].Add(1) })
		for i := range calls {
			if got := calls[i].Load(); got != 1 {
				t.Fatalf("%+v: index %d called %d times", c, i, got)
			}
		}
	}
}

// TestForSerialInOrder: with one worker the calls run in order on the
// caller's goroutine.
func TestForSerialInOrder(t *testing.T) {
	var got []int
	For(10, 1, 1, func(i int) { got = append(got, i) })
	for i, v := range got {
		if v != i {
			t.Fatalf("call %d was fn(%d)", i, v)
		}
	}
	if len(got) != 10 {
		t.Fatalf("%d calls, want 10", len(got))
	}
}
