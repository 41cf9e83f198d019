package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// BenchmarkPostBatch posts b.N JSON Lines requests of 1,024 disclosures
// each, from four clients at once, to a gateway in front of a real ledger
// (Pebble, ingest, embedded NATS), every request waiting for all its
// receipts: the rate is disclosures per second with receipts, gateway and
// ledger on one machine. cpu-us/disclosure is the CPU time of the whole
// process (gateway, ledger, NATS server and the test's clients) per
// disclosure.
//
//	go test -run XXX -bench PostBatch -benchtime 40x ./gateway/
func BenchmarkPostBatch(b *testing.B) {
	r := newRig(b, true, waitLong)
	const perRequest, clients = 1024, 4
	bodies := make([][]byte, b.N)
	seq := 0
	for i := range bodies {
		var buf bytes.Buffer
		for range perRequest {
			seq++
			n := testBSN(seq)
			buf.Write(input(func(m map[string]any) { m["subject"] = map[string]any{"id_type": "bsn", "number": n} }))
			buf.WriteByte('\n')
		}
		bodies[i] = buf.Bytes()
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				resp := r.post(tokenA, fmt.Sprintf("bench-%d", i), "application/jsonl", bodies[i])
				if resp.status != http.StatusOK {
					b.Errorf("status %d: %.300s", resp.status, resp.body)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	n := float64(b.N * perRequest)
	b.ReportMetric(n/elapsed.Seconds(), "disclosures/s")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/disclosure")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPostOne posts one disclosure per request, one after another,
// and reports the 50th and 99th percentile of a POST to its receipt.
//
//	go test -run XXX -bench PostOne -benchtime 500x ./gateway/
func BenchmarkPostOne(b *testing.B) {
	r := newRig(b, true, waitLong)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		body := input(func(m map[string]any) { m["subject"] = map[string]any{"id_type": "bsn", "number": testBSN(i + 1)} })
		t0 := time.Now()
		resp := r.post(tokenA, fmt.Sprintf("one-%d", i), "application/json", body)
		lat = append(lat, time.Since(t0))
		if resp.status != http.StatusOK {
			b.Fatalf("status %d: %.300s", resp.status, resp.body)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// testBSNs are the numbers of the 9999 test range that pass the elfproef.
var testBSNs = func() []string {
	var out []string
	for n := range 100000 {
		s := fmt.Sprintf("9999%05d", n)
		if events.CheckNumber(events.IDTypeBSN, s) == nil {
			out = append(out, s)
		}
	}
	return out
}()

// testBSN is the i-th of testBSNs, round and round: a child has many
// disclosures.
func testBSN(i int) string { return testBSNs[i%len(testBSNs)] }
