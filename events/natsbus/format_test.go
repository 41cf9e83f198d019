package natsbus_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
)

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenMessages pins the wire form of the messages between the ledger
// and the parties: each golden file decodes to the expected value and that
// value encodes to the same bytes.
func TestGoldenMessages(t *testing.T) {
	const id = "01963b2e-7c1a-7d4e-9f3a-0b1c2d3e4f50"
	cases := []struct {
		file  string
		parse func([]byte) (any, error)
		want  any
	}{
		{
			file:  "rejection.json",
			parse: func(b []byte) (any, error) { return natsbus.ParseRejection(b) },
			want: &natsbus.Rejection{
				EventID: id,
				MsgID:   id + ".ba7816bf8f01cfea",
				Party:   "gemeente-amersfoort",
				Reason:  events.ReasonKeyNotInForce,
				Message: "key not in force: key 3f2a… is not valid at occurred_at",
				At:      time.Date(2026, 3, 1, 12, 30, 0, 123e6, time.UTC),
			},
		},
		{
			file:  "receipt.json",
			parse: func(b []byte) (any, error) { return natsbus.ParseReceipt(b) },
			want: &natsbus.Receipt{
				EventID:        id,
				Status:         natsbus.ReceiptCommitted,
				LeafIndex:      41,
				TreeSize:       57,
				InclusionProof: [][]byte{bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)},
				Checkpoint:     []byte("spoor.test/regio-amersfoort\n57\nAAAA\n\n\u2014 spoor.test AAAA\n"),
			},
		},
		{
			file:  "receipt_request.json",
			parse: func(b []byte) (any, error) { return natsbus.ParseReceiptRequest(b) },
			want:  &natsbus.ReceiptRequest{EventID: id, SHA256: "3a67e75401c26bc942454e22bfa4000e7b6367bff500b4c23987c67324226d3b"},
		},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			golden := readGolden(t, c.file)
			got, err := c.parse(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded %+v, want %+v", got, c.want)
			}
			enc, err := json.Marshal(c.want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, golden) {
				t.Errorf("encoded\n%s\nwant\n%s", enc, golden)
			}
		})
	}
}

func TestReceiptValidate(t *testing.T) {
	const id = "01963b2e-7c1a-7d4e-9f3a-0b1c2d3e4f50"
	for _, bad := range []natsbus.Receipt{
		{EventID: "x", Status: natsbus.ReceiptPending},
		{EventID: id, Status: "done"},
		{EventID: id, Status: natsbus.ReceiptCommitted, LeafIndex: 5, TreeSize: 5, Checkpoint: []byte("c")},
		{EventID: id, Status: natsbus.ReceiptCommitted, LeafIndex: 1, TreeSize: 5},
		{EventID: id, Status: natsbus.ReceiptRejected},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}

// FuzzParseRejection: whatever the bytes, ParseRejection does not panic,
// and what it accepts encodes to a stable form.
func FuzzParseRejection(f *testing.F) {
	f.Add(readGolden(f, "rejection.json"))
	f.Add([]byte(`{"party":"a","reason":"malformed","at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"party":"a.b","reason":"","at":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := natsbus.ParseRejection(b)
		if err != nil {
			return
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := natsbus.ParseRejection(enc)
		if err != nil {
			t.Fatalf("re-encoded rejection does not parse: %v", err)
		}
		enc2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzParseReceipt: as FuzzParseRejection, for receipts.
func FuzzParseReceipt(f *testing.F) {
	f.Add(readGolden(f, "receipt.json"))
	f.Add([]byte(`{"event_id":"01963b2e-7c1a-7d4e-9f3a-0b1c2d3e4f50","status":"pending"}`))
	f.Add([]byte(`{"event_id":"01963b2e-7c1a-7d4e-9f3a-0b1c2d3e4f50","status":"rejected","reason":"id_conflict"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := natsbus.ParseReceipt(b)
		if err != nil {
			return
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := natsbus.ParseReceipt(enc)
		if err != nil {
			t.Fatalf("re-encoded receipt does not parse: %v", err)
		}
		enc2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
