package subjectindex

import (
	"bytes"
	"errors"
	vrf "filippo.io/mostly-harmless/vrf-r255"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

func TestListRules(t *testing.T) {
	good := List{Items: []Item{{Leaf: 1}, {Leaf: 5, Erased: true, Tombstone: 9}}}
	if _, err := good.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]List{
		"empty":                 {},
		"out of order":          {Items: []Item{{Leaf: 5}, {Leaf: 1}}},
		"repeated":              {Items: []Item{{Leaf: 5}, {Leaf: 5}}},
		"tombstone before leaf": {Items: []Item{{Leaf: 5, Erased: true, Tombstone: 5}}},
		"live with tombstone":   {Items: []Item{{Leaf: 5, Tombstone: 9}}},
		"too long":              {Items: make([]Item, MaxListItems+1)},
	}
	for name, l := range bad {
		if _, err := l.MarshalBinary(); !errors.Is(err, ErrList) {
			t.Errorf("%s: %v, want ErrList", name, err)
		}
		if _, err := l.Commitment(MapKey{}); !errors.Is(err, ErrList) {
			t.Errorf("%s: commitment made: %v", name, err)
		}
	}
	b, _ := good.MarshalBinary()
	malformed := map[string][]byte{
		"version 0":      append([]byte{0}, b[1:]...),
		"trailing":       append(bytes.Clone(b), 0),
		"cut":            b[:len(b)-1],
		"state 2":        func() []byte { c := bytes.Clone(b); c[37+8] = 2; return c }(),
		"count too high": func() []byte { c := bytes.Clone(b); c[36] = 3; return c }(),
		"count zero":     func() []byte { c := bytes.Clone(b[:37]); c[36] = 0; return c }(),
		"huge count":     func() []byte { c := bytes.Clone(b); c[33] = 0xff; return c }(),
	}
	for name, m := range malformed {
		if _, err := ParseList(m); !errors.Is(err, ErrList) {
			t.Errorf("%s: %v, want ErrList", name, err)
		}
	}
}

// TestCommitmentBindsEverything: the nonce, each item and the key each
// change the commitment.
func TestCommitmentBindsEverything(t *testing.T) {
	base := List{Items: []Item{{Leaf: 1}, {Leaf: 5, Erased: true, Tombstone: 9}}}
	c0, _ := base.Commitment(testKey(1))
	variants := map[string]func(l *List) MapKey{
		"nonce":        func(l *List) MapKey { l.Nonce[31] = 1; return testKey(1) },
		"a leaf":       func(l *List) MapKey { l.Items[0].Leaf = 2; return testKey(1) },
		"erased state": func(l *List) MapKey { l.Items[1] = Item{Leaf: 5}; return testKey(1) },
		"tombstone":    func(l *List) MapKey { l.Items[1].Tombstone = 10; return testKey(1) },
		"an item less": func(l *List) MapKey { l.Items = l.Items[:1]; return testKey(1) },
		"the key":      func(l *List) MapKey { return testKey(2) },
	}
	for name, change := range variants {
		l := List{Nonce: base.Nonce, Items: append([]Item(nil), base.Items...)}
		k := change(&l)
		c, err := l.Commitment(k)
		if err != nil || c == c0 {
			t.Errorf("changing %s leaves the commitment (%v)", name, err)
		}
	}
}

func TestKeyDerivation(t *testing.T) {
	sk := events.SubjectKey{ID: "k1", Secret: bytes.Repeat([]byte{1}, events.SubjectKeySize)}
	bsn, _ := events.SubjectFor(sk, events.IDTypeBSN, "999990019")
	sk2 := events.SubjectKey{ID: "k2", Secret: bytes.Repeat([]byte{2}, events.SubjectKeySize)}
	bsn2, _ := events.SubjectFor(sk2, events.IDTypeBSN, "999990019")
	a, err := DeriveIndexKey(string(bsn.IDType), bsn.KeyID, bsn.Pseudonym)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DeriveIndexKey(string(bsn2.IDType), bsn2.KeyID, bsn2.Pseudonym)
	c, _ := DeriveIndexKey("onderwijsnummer", bsn.KeyID, bsn.Pseudonym)
	if a == b || a == c || b == c {
		t.Errorf("key versions or identifier types share an index key")
	}
	vk := testVRF(t)
	ma, pa := proveMapKey(t, vk, a, "gemeente-a")
	mb, pb := proveMapKey(t, vk, a, "school-b")
	if ma == mb {
		t.Errorf("two parties share a map key")
	}
	pub, err := ParseVRFPublicKey(vk.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pub.MapKey(a, "gemeente-a", pa); err != nil || got != ma {
		t.Errorf("the map key's own proof: %x, %v; want %x", got, err, ma)
	}
	// A proof for another party, another child or under another key
	// does not give a map key.
	if _, err := pub.MapKey(a, "gemeente-a", pb); !errors.Is(err, ErrKey) {
		t.Errorf("school-b's proof checked for gemeente-a: %v, want ErrKey", err)
	}
	if _, err := pub.MapKey(b, "gemeente-a", pa); !errors.Is(err, ErrKey) {
		t.Errorf("another index key's proof checked: %v, want ErrKey", err)
	}
	other, _ := vrf.NewPrivateKey(bytes.Repeat([]byte{2}, 32))
	opub, _ := ParseVRFPublicKey(other.PublicKey().Bytes())
	if _, err := opub.MapKey(a, "gemeente-a", pa); !errors.Is(err, ErrKey) {
		t.Errorf("a proof checked under another VRF key: %v, want ErrKey", err)
	}
	if _, err := pub.MapKey(a, "gemeente-a", pa[:79]); !errors.Is(err, ErrKey) {
		t.Errorf("a short proof: %v, want ErrKey", err)
	}
	if _, err := ParseVRFPublicKey(make([]byte, 31)); !errors.Is(err, ErrKey) {
		t.Errorf("a short public key: %v, want ErrKey", err)
	}
	bad := [][3]string{
		{"passport", "k1", bsn.Pseudonym},
		{"bsn", "", bsn.Pseudonym},
		{"bsn", "-k", bsn.Pseudonym},
		{"bsn", "k1", strings.ToUpper(bsn.Pseudonym)},
		{"bsn", "k1", bsn.Pseudonym[:63]},
	}
	for _, in := range bad {
		_, err := DeriveIndexKey(in[0], in[1], in[2])
		if !errors.Is(err, ErrKey) {
			t.Errorf("DeriveIndexKey(%q, %q, ...): %v, want ErrKey", in[0], in[1], err)
		}
		if err != nil && strings.Contains(strings.ToLower(err.Error()), bsn.Pseudonym[:16]) {
			t.Errorf("an error repeats the pseudonym: %v", err)
		}
	}
	for _, p := range []string{"", "Gemeente", "-a", strings.Repeat("a", 64), "a_b"} {
		if _, err := MapKeyInput(a, p); !errors.Is(err, ErrKey) {
			t.Errorf("MapKeyInput(%q): %v, want ErrKey", p, err)
		}
	}
}
