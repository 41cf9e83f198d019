package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLeafRecordRoundTrip(t *testing.T) {
	for _, rec := range []LeafRecord{
		{Type: EntryDisclosure, IntegratedAt: time.UnixMilli(0)},
		{Type: EntryCovenant, BodyHash: sha256.Sum256(nil), IntegratedAt: time.UnixMilli(1 << 50), CovenantIndex: 1<<64 - 1},
		{Type: EntryTombstone, IntegratedAt: time.UnixMilli(1767603600000), CovenantIndex: 7, ErasedIndex: 1<<64 - 1,
			RuleID: strings.Repeat("a", MaxRuleIDLength)},
		{Type: EntryTombstone, IntegratedAt: time.UnixMilli(1), RuleID: "0"},
		{Type: EntryTombstone, IntegratedAt: time.UnixMilli(1), RuleID: "az09._:-"},
	} {
		b, err := rec.MarshalBinary()
		if err != nil {
			t.Fatalf("%+v: %v", rec, err)
		}
		wantLen := LeafRecordSize
		if rec.Type == EntryTombstone {
			wantLen += 9 + len(rec.RuleID)
		}
		if len(b) != wantLen || len(b) > MaxLeafRecordSize {
			t.Errorf("%s record is %d bytes, want %d", rec.Type, len(b), wantLen)
		}
		got, err := ParseLeafRecord(b)
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if !leafRecordsEqual(got, &rec) || got.IntegratedAt.Location() != time.UTC {
			t.Errorf("round trip of %+v gave %+v", rec, got)
		}
		var u LeafRecord
		if err := u.UnmarshalBinary(b); err != nil || !leafRecordsEqual(&u, &rec) {
			t.Errorf("UnmarshalBinary: %v, %+v", err, u)
		}
	}
}

func TestLeafRecordLayout(t *testing.T) {
	rec := LeafRecord{Type: EntryTombstone, BodyHash: [32]byte{0: 0xaa, 31: 0xbb},
		IntegratedAt: time.UnixMilli(0x0102030405), CovenantIndex: 0x0a0b, ErasedIndex: 0x0c0d, RuleID: "r1"}
	b, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 3}
	want = append(want, rec.BodyHash[:]...)
	want = binary.BigEndian.AppendUint64(want, 0x0102030405)
	want = binary.BigEndian.AppendUint64(want, 0x0a0b)
	want = binary.BigEndian.AppendUint64(want, 0x0c0d)
	want = append(want, 2, 'r', '1')
	if !bytes.Equal(b, want) {
		t.Errorf("got  %x\nwant %x", b, want)
	}
	if got, want := LeafHash(b), sha256.Sum256(append([]byte{0}, b...)); got != want {
		t.Errorf("LeafHash = %x, want SHA-256(0x00 || record) = %x", got, want)
	}
	for ty, name := range map[EntryType]string{EntryDisclosure: "disclosure", EntryCovenant: "covenant",
		EntryTombstone: "tombstone", 0: "EntryType(0)", 9: "EntryType(9)"} {
		if ty.String() != name {
			t.Errorf("EntryType(%d).String() = %q, want %q", uint8(ty), ty.String(), name)
		}
	}
}

func TestLeafRecordMarshalRefuses(t *testing.T) {
	ok := time.UnixMilli(1767603600000)
	for name, rec := range map[string]LeafRecord{
		"unknown type":              {Type: 6, IntegratedAt: ok},
		"zero type":                 {Type: 0, IntegratedAt: ok},
		"before 1970":               {Type: EntryDisclosure, IntegratedAt: time.UnixMilli(-1)},
		"zero time":                 {Type: EntryDisclosure},
		"sub-millisecond":           {Type: EntryDisclosure, IntegratedAt: ok.Add(time.Microsecond)},
		"disclosure with rule":      {Type: EntryDisclosure, IntegratedAt: ok, RuleID: "r"},
		"covenant with erased":      {Type: EntryCovenant, IntegratedAt: ok, ErasedIndex: 1},
		"tombstone without rule":    {Type: EntryTombstone, IntegratedAt: ok},
		"tombstone long rule":       {Type: EntryTombstone, IntegratedAt: ok, RuleID: strings.Repeat("a", 65)},
		"tombstone upper-case rule": {Type: EntryTombstone, IntegratedAt: ok, RuleID: "Rule"},
		"tombstone rule with space": {Type: EntryTombstone, IntegratedAt: ok, RuleID: "a b"},
		"tombstone non-ASCII rule":  {Type: EntryTombstone, IntegratedAt: ok, RuleID: "zorg\u00e9"},
	} {
		dst := []byte("prefix")
		got, err := rec.AppendBinary(dst)
		if !errors.Is(err, ErrMalformedLeafRecord) {
			t.Errorf("%s: err = %v, want ErrMalformedLeafRecord", name, err)
		}
		if string(got) != "prefix" {
			t.Errorf("%s: AppendBinary changed dst on error: %q", name, got)
		}
	}
}

func TestParseLeafRecordRefuses(t *testing.T) {
	disclosure, _ := (&LeafRecord{Type: EntryDisclosure, IntegratedAt: time.UnixMilli(5)}).MarshalBinary()
	tomb, _ := (&LeafRecord{Type: EntryTombstone, IntegratedAt: time.UnixMilli(5), RuleID: "abc"}).MarshalBinary()
	with := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	for name, b := range map[string][]byte{
		"empty":               nil,
		"short":               disclosure[:49],
		"version 0":           with(disclosure, func(b []byte) []byte { b[0] = 0; return b }),
		"version 2":           with(disclosure, func(b []byte) []byte { b[0] = 2; return b }),
		"type 0":              with(disclosure, func(b []byte) []byte { b[1] = 0; return b }),
		"type 6 (unknown)":    with(disclosure, func(b []byte) []byte { b[1] = 6; return b }),
		"trailing byte":       append(bytes.Clone(disclosure), 0),
		"time out of range":   with(disclosure, func(b []byte) []byte { b[34] = 0x80; return b }),
		"tombstone truncated": tomb[:58],
		"tombstone no rule":   tomb[:59],
		"rule length 0":       with(tomb[:59], func(b []byte) []byte { b[58] = 0; return b }),
		"rule length 65":      with(tomb, func(b []byte) []byte { b[58] = 65; return b }),
		"rule short":          with(tomb, func(b []byte) []byte { b[58] = 4; return b }),
		"rule long":           append(bytes.Clone(tomb), 'd'),
		"rule bad character":  with(tomb, func(b []byte) []byte { b[59] = 'A'; return b }),
		"disclosure as tomb":  with(tomb, func(b []byte) []byte { b[1] = byte(EntryDisclosure); return b }),
	} {
		if _, err := ParseLeafRecord(b); !errors.Is(err, ErrMalformedLeafRecord) {
			t.Errorf("%s: err = %v, want ErrMalformedLeafRecord", name, err)
		}
	}
}

func TestAppendBinaryAllocatesNothing(t *testing.T) {
	rec := goldenRecords[2].rec
	buf := make([]byte, 0, MaxLeafRecordSize)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = rec.AppendBinary(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendBinary allocates %v times with room in dst", allocs)
	}
}

func FuzzParseLeafRecord(f *testing.F) {
	for _, g := range goldenRecords {
		f.Add(readGoldenHex(f, g.file))
	}
	f.Add([]byte{1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLeafRecord(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedLeafRecord) {
				t.Fatalf("error %v does not wrap ErrMalformedLeafRecord", err)
			}
			return
		}
		// One byte form per record: what parses marshals back identically.
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed record %+v does not marshal: %v", r, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("parse then marshal: %x, want %x", again, b)
		}
	})
}

// TestUnknownFutureEntryType: a record of a type above LatestEntryType is
// refused as one written by a newer ledger (the message names the type
// and says to upgrade); type 0 is merely malformed.
func TestUnknownFutureEntryType(t *testing.T) {
	disclosure, _ := (&LeafRecord{Type: EntryDisclosure, IntegratedAt: time.UnixMilli(5)}).MarshalBinary()
	for _, ty := range []byte{byte(LatestEntryType) + 1, 200} {
		b := bytes.Clone(disclosure)
		b[1] = ty
		_, err := ParseLeafRecord(b)
		var unknown *UnknownEntryTypeError
		if !errors.As(err, &unknown) || unknown.Type != ty || !errors.Is(err, ErrMalformedLeafRecord) {
			t.Fatalf("type %d: err = %v, want an UnknownEntryTypeError that is an ErrMalformedLeafRecord", ty, err)
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("entry type %d", ty)) || !strings.Contains(msg, "upgrade spoor") {
			t.Errorf("type %d: the message does not name the type or say to upgrade: %s", ty, msg)
		}
		if _, err := (&LeafRecord{Type: EntryType(ty), IntegratedAt: time.UnixMilli(5)}).MarshalBinary(); !errors.As(err, &unknown) {
			t.Errorf("type %d: MarshalBinary: %v", ty, err)
		}
	}
	b := bytes.Clone(disclosure)
	b[1] = 0
	var unknown *UnknownEntryTypeError
	if _, err := ParseLeafRecord(b); errors.As(err, &unknown) || !errors.Is(err, ErrMalformedLeafRecord) {
		t.Errorf("type 0: %v, want a malformed record, not a future type", err)
	}
}
