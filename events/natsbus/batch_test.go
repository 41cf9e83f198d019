package natsbus_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events/natsbus"
)

// TestBatchGolden pins the wire form of a batch message: JSON Lines, each
// envelope followed by one newline, and the count in the header.
func TestBatchGolden(t *testing.T) {
	golden := readGolden(t, "batch.jsonl")
	envs, err := natsbus.SplitBatch("2", golden)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 || !bytes.HasPrefix(envs[1], []byte(`{"payloadType":"b"`)) {
		t.Fatalf("split into %q", envs)
	}
	body, err := natsbus.EncodeBatch(envs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, golden) {
		t.Fatalf("encoded %q, want the golden bytes", body)
	}
	m, err := natsbus.BatchMessage("gemeente-amersfoort", envs)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != natsbus.DisclosureSubject("gemeente-amersfoort") || m.Header.Get(natsbus.BatchHeader) != "2" ||
		m.Header.Get(jetstream.ExpectedStreamHeader) != natsbus.Stream || m.Header.Get(jetstream.MsgIDHeader) != natsbus.BatchMsgID(golden) {
		t.Fatalf("message %s with headers %v", m.Subject, m.Header)
	}
	if id := natsbus.BatchMsgID(golden); !strings.HasPrefix(id, "batch.") || len(id) != len("batch.")+32 {
		t.Fatalf("batch msg id %q", id)
	}
}

func TestBatchRefusals(t *testing.T) {
	env := []byte(`{"payloadType":"a"}`)
	line := string(env) + "\n"
	split := []struct {
		name, count, body, says string
	}{
		{"count too high", "3", line + line, "2 lines, Spoor-Batch announces 3"},
		{"count too low", "1", line + line, "more than the 1 lines"},
		{"no final newline", "2", line + string(env), "no newline"},
		{"empty line", "2", line + "\n", "line 2 is empty"},
		{"empty body", "1", "", "0 lines"},
		{"zero", "0", line, "not a count"},
		{"leading zero", "01", line, "not a count"},
		{"sign", "+1", line, "not a count"},
		{"over the limit", strconv.Itoa(natsbus.MaxBatchEvents + 1), line, "not a count"},
		{"not a number", "two", line, "not a count"},
		{"too large", "1", strings.Repeat("x", natsbus.MaxBatchBytes) + "\n", "bytes, the limit"},
	}
	for _, c := range split {
		_, err := natsbus.SplitBatch(c.count, []byte(c.body))
		if !errors.Is(err, natsbus.ErrBadBatch) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want ErrBadBatch saying %q", c.name, err, c.says)
		}
	}
	encode := []struct {
		name string
		envs [][]byte
	}{
		{"none", nil},
		{"too many", slicesRepeat(env, natsbus.MaxBatchEvents+1)},
		{"a newline inside", [][]byte{env, []byte("{\n}")}},
		{"an empty envelope", [][]byte{env, {}}},
		{"too large", slicesRepeat(bytes.Repeat([]byte("x"), 64<<10), 17)},
	}
	for _, c := range encode {
		if _, err := natsbus.EncodeBatch(c.envs); !errors.Is(err, natsbus.ErrBadBatch) {
			t.Errorf("%s: %v, want ErrBadBatch", c.name, err)
		}
	}
	if _, err := natsbus.EncodeBatch(slicesRepeat(bytes.Repeat([]byte("x"), 64<<10), 17)); !errors.Is(err, natsbus.ErrBatchTooLarge) {
		t.Errorf("too large: %v, want ErrBatchTooLarge", err)
	}
	if _, err := natsbus.BatchMessage("Not A Party", [][]byte{env}); !errors.Is(err, natsbus.ErrInvalidParty) {
		t.Errorf("batch for an invalid party: %v", err)
	}
}

func slicesRepeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// FuzzSplitBatch: SplitBatch never panics, and what it accepts encodes back
// to the same body with the same count.
func FuzzSplitBatch(f *testing.F) {
	f.Add("2", readGolden(f, "batch.jsonl"))
	f.Add("1", []byte("x\n"))
	f.Add("3", []byte("a\nb\n"))
	f.Add("1", []byte("\n"))
	f.Fuzz(func(t *testing.T, count string, body []byte) {
		envs, err := natsbus.SplitBatch(count, body)
		if err != nil {
			if !errors.Is(err, natsbus.ErrBadBatch) {
				t.Fatalf("error not ErrBadBatch: %v", err)
			}
			return
		}
		if strconv.Itoa(len(envs)) != count {
			t.Fatalf("%d envelopes for count %q", len(envs), count)
		}
		again, err := natsbus.EncodeBatch(envs)
		if err != nil {
			t.Fatalf("accepted batch does not encode: %v", err)
		}
		if !bytes.Equal(again, body) {
			t.Fatalf("re-encoded %q, was %q", again, body)
		}
	})
}

// TestSplitWhenTooLarge: a batch refused as too large goes out in halves,
// in order, halved again as needed; a batch of one is not split, and
// another error stops the sending.
func TestSplitWhenTooLarge(t *testing.T) {
	var sent [][]int
	err := natsbus.SplitWhenTooLarge([]int{1, 2, 3, 4, 5}, func(b []int) error {
		if len(b) > 2 {
			return fmt.Errorf("couldn't publish: %w", natsbus.ErrBatchTooLarge)
		}
		sent = append(sent, b)
		return nil
	})
	if err != nil || fmt.Sprint(sent) != "[[1 2] [3] [4 5]]" {
		t.Errorf("sent %v, %v; want [[1 2] [3] [4 5]]", sent, err)
	}
	calls := 0
	err = natsbus.SplitWhenTooLarge([]int{1}, func([]int) error { calls++; return natsbus.ErrBatchTooLarge })
	if !errors.Is(err, natsbus.ErrBatchTooLarge) || calls != 1 {
		t.Errorf("one item: %d calls, %v", calls, err)
	}
	boom := errors.New("boom")
	calls = 0
	err = natsbus.SplitWhenTooLarge([]int{1, 2, 3, 4}, func(b []int) error {
		calls++
		if len(b) == 4 {
			return natsbus.ErrBatchTooLarge
		}
		return boom
	})
	if !errors.Is(err, boom) || calls != 2 {
		t.Errorf("another error: %d calls, %v; want the first half's error after 2 calls", calls, err)
	}
}
