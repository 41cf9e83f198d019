package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// testLog is a freshly generated log key set with a signer.
type testLog struct {
	logSkey, logVkey, cosSkey, cosVkey string
	signer                             *CheckpointSigner
	keys                               *LogKeys
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	l := &testLog{}
	var err error
	l.logSkey, l.logVkey, l.cosSkey, l.cosVkey, err = GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	if l.signer, err = NewCheckpointSigner(l.logSkey, l.cosSkey); err != nil {
		t.Fatal(err)
	}
	if l.keys, err = ParseLogKeys(l.logVkey, l.cosVkey); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCheckpointSignAndOpen(t *testing.T) {
	l := newTestLog(t, "spoor.example/regio")
	root := sha256.Sum256([]byte("root"))
	before := time.Now().Truncate(time.Second)
	b, err := l.signer.Sign("spoor.example/regio", 1234567, root)
	if err != nil {
		t.Fatal(err)
	}
	body := "spoor.example/regio\n1234567\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
	if got := string(FormatCheckpoint("spoor.example/regio", 1234567, root)); got != body {
		t.Errorf("FormatCheckpoint = %q, want %q", got, body)
	}
	if !strings.HasPrefix(string(b), body+"\n— spoor.example/regio ") {
		t.Errorf("signed checkpoint does not start with the body and the log signature:\n%s", b)
	}
	cp, err := OpenCheckpoint(b, l.keys)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != "spoor.example/regio" || cp.Size != 1234567 || cp.Hash != root || !bytes.Equal(cp.Note, b) {
		t.Errorf("opened %+v", cp)
	}
	if cp.CosignedAt.Before(before) || cp.CosignedAt.After(time.Now()) || cp.CosignedAt.Location() != time.UTC {
		t.Errorf("CosignedAt = %v, want a UTC time of the signing", cp.CosignedAt)
	}
	if tr := cp.Tree(); tr.N != 1234567 || [32]byte(tr.Hash) != root {
		t.Errorf("Tree() = %+v", tr)
	}
	if l.signer.Origin() != "spoor.example/regio" {
		t.Errorf("Origin() = %q", l.signer.Origin())
	}
	if _, err := l.signer.Sign("spoor.example/other", 1, root); !errors.Is(err, ErrWrongOrigin) {
		t.Errorf("signing for another origin: %v", err)
	}

	// The empty tree.
	b, err = l.signer.Sign("spoor.example/regio", 0, sha256.Sum256(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := OpenCheckpoint(b, l.keys); err != nil || cp.Size != 0 {
		t.Errorf("empty tree: %v", err)
	}
}

// TestGenerateLogKeys checks the key encodings: the log key is a plain
// Ed25519 note key, the cosigner key is 0x04 and named <origin>/cosigner, and
// x/mod's note package cannot load the cosigner's signer key.
func TestGenerateLogKeys(t *testing.T) {
	l := newTestLog(t, "spoor.example/keys")
	if alg, _ := vkeyAlgorithm(l.logVkey); alg != algEd25519 {
		t.Errorf("log vkey algorithm %d", alg)
	}
	if alg, _ := vkeyAlgorithm(l.cosVkey); alg != algCosignatureV1 {
		t.Errorf("cosigner vkey algorithm %d", alg)
	}
	if !strings.HasPrefix(l.cosVkey, "spoor.example/keys/cosigner+") {
		t.Errorf("cosigner vkey %q", l.cosVkey)
	}
	if _, err := note.NewSigner(l.cosSkey); err == nil {
		t.Error("x/mod note loads the cosigner signer key as a plain Ed25519 key")
	}
	// The formats library derives the same key hash from the signer key.
	s, err := fnote.NewSignerForCosignatureV1(l.cosSkey)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyHash() != l.keys.Cosigner.KeyHash() {
		t.Errorf("cosigner key hash: signer %08x, verifier %08x", s.KeyHash(), l.keys.Cosigner.KeyHash())
	}
	if fp := KeyFingerprint(l.cosVkey); !strings.HasPrefix(fp, "spoor.example/keys/cosigner+") || len(fp) != len("spoor.example/keys/cosigner+")+8 {
		t.Errorf("KeyFingerprint = %q", fp)
	}
	// The parsed keys give the same fingerprints as their text.
	if got, want := NoteKeyFingerprint(l.keys.Cosigner), KeyFingerprint(l.cosVkey); got != want {
		t.Errorf("NoteKeyFingerprint(cosigner) = %q, KeyFingerprint = %q", got, want)
	}
	if got, want := NoteKeyFingerprint(l.keys.Log), KeyFingerprint(l.logVkey); got != want {
		t.Errorf("NoteKeyFingerprint(log) = %q, KeyFingerprint = %q", got, want)
	}
	for _, bad := range []string{"", "a b", "a+b", "a\x01b"} {
		if _, _, _, _, err := GenerateLogKeys(bad); err == nil {
			t.Errorf("GenerateLogKeys(%q) succeeded", bad)
		}
	}
	for _, bad := range []string{"", "name", "name+1234", "name+123456789+AAAA", "name+zzzzzzzz+AAAA"} {
		if fp := KeyFingerprint(bad); fp != "" {
			t.Errorf("KeyFingerprint(%q) = %q, want \"\"", bad, fp)
		}
	}
}

func TestParseLogKeys(t *testing.T) {
	l := newTestLog(t, "spoor.example/pk")
	other := newTestLog(t, "spoor.example/other")
	b, err := l.signer.Sign("spoor.example/pk", 5, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}

	// The cosigner key in the plain Ed25519 (0x01) form verifies the same
	// cosignatures.
	seed, err := base64.StdEncoding.DecodeString(strings.SplitN(l.cosSkey, "+", 5)[4])
	if err != nil {
		t.Fatal(err)
	}
	_, plainCosVkey := encodeKeyPair("spoor.example/pk/cosigner", algEd25519, seed[1:])
	keys, err := ParseLogKeys(l.logVkey+"\n", plainCosVkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(b, keys); err != nil {
		t.Errorf("with a 0x01 cosigner vkey: %v", err)
	}

	for name, k := range map[string][2]string{
		"keys swapped":           {l.cosVkey, l.logVkey},
		"cosigner of other log":  {l.logVkey, other.cosVkey},
		"log key as cosigner":    {l.logVkey, l.logVkey},
		"garbage log key":        {"x", l.cosVkey},
		"garbage cosigner key":   {l.logVkey, "spoor.example/pk/cosigner+00000000+!!!"},
		"unsupported cosig alg":  {l.logVkey, "spoor.example/pk/cosigner+00000000+BgAA"},
		"empty cosigner key":     {l.logVkey, ""},
		"cosigner key two parts": {l.logVkey, "spoor.example/pk/cosigner+00000000"},
	} {
		if _, err := ParseLogKeys(k[0], k[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewCheckpointSigner(l.logSkey, other.cosSkey); err == nil {
		t.Error("NewCheckpointSigner accepted the cosigner of another log")
	}
	if _, err := NewCheckpointSigner(l.cosSkey, l.cosSkey); err == nil {
		t.Error("NewCheckpointSigner accepted a cosigner key as the log key")
	}
}

// TestOpenCheckpointRefuses: each way of breaking a checkpoint has its own
// sentinel.
func TestOpenCheckpointRefuses(t *testing.T) {
	l := newTestLog(t, "spoor.example/regio")
	other := newTestLog(t, "spoor.example/other")
	good, err := l.signer.Sign("spoor.example/regio", 300, sha256.Sum256([]byte("r")))
	if err != nil {
		t.Fatal(err)
	}
	body, sigs := splitNote(t, good)
	if len(sigs) != 2 {
		t.Fatalf("want 2 signature lines, got %q", sigs)
	}
	logSig, cosSig := sigs[0], sigs[1]
	note := func(body string, sigs ...string) []byte { return []byte(body + "\n" + strings.Join(sigs, "\n") + "\n") }
	witness := witnessSignature(t, body)

	// tamperSig flips a bit in the last byte of a signature line's signature.
	tamperSig := func(line string, at int) string {
		i := strings.LastIndex(line, " ")
		sig, err := base64.StdEncoding.DecodeString(line[i+1:])
		if err != nil {
			t.Fatal(err)
		}
		if at < 0 {
			at += len(sig)
		}
		sig[at] ^= 1
		return line[:i+1] + base64.StdEncoding.EncodeToString(sig)
	}
	otherCP, err := other.signer.Sign("spoor.example/other", 300, sha256.Sum256([]byte("r")))
	if err != nil {
		t.Fatal(err)
	}
	otherBody, otherSigs := splitNote(t, otherCP)
	rootLine := strings.Split(body, "\n")[2]

	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"tampered size", note(strings.Replace(body, "\n300\n", "\n301\n", 1), logSig, cosSig), ErrBadSignature},
		{"tampered root", note(strings.Replace(body, rootLine, flipBase64(rootLine), 1), logSig, cosSig), ErrBadSignature},
		{"tampered log signature", note(body, tamperSig(logSig, -1), cosSig), ErrBadSignature},
		{"tampered cosignature", note(body, logSig, tamperSig(cosSig, -1)), ErrBadSignature},
		{"tampered cosignature time", note(body, logSig, tamperSig(cosSig, 11)), ErrBadSignature},
		{"cosignature dropped", note(body, logSig), ErrMissingCosignature},
		{"cosignature dropped, witness kept", note(body, logSig, witness), ErrMissingCosignature},
		{"log signature dropped", note(body, cosSig), ErrBadSignature},
		{"only a witness", note(body, witness), ErrBadSignature},
		{"another origin", otherCP, ErrWrongOrigin},
		{"our origin, other log's signatures", note(body, otherSigs...), ErrBadSignature},
		{"other origin, our signatures", note(otherBody, logSig, cosSig), ErrWrongOrigin},
		{"extension line", note(body+"ext\n", logSig, cosSig), ErrMalformedCheckpoint},
		{"leading zero size", note(strings.Replace(body, "\n300\n", "\n0300\n", 1), logSig, cosSig), ErrMalformedCheckpoint},
		{"signed size", note(strings.Replace(body, "\n300\n", "\n+300\n", 1), logSig, cosSig), ErrMalformedCheckpoint},
		{"size too large", note(strings.Replace(body, "\n300\n", "\n9223372036854775808\n", 1), logSig, cosSig), ErrMalformedCheckpoint},
		{"unpadded root", note(strings.Replace(body, rootLine, strings.TrimRight(rootLine, "="), 1), logSig, cosSig), ErrMalformedCheckpoint},
		{"short root", note(strings.Replace(body, rootLine, "AAAA", 1), logSig, cosSig), ErrMalformedCheckpoint},
		{"no signatures", []byte(body), ErrMalformedCheckpoint},
		{"no blank line", []byte(body + logSig + "\n"), ErrMalformedCheckpoint},
		{"no final newline", good[:len(good)-1], ErrMalformedCheckpoint},
		{"repeated cosignature", note(body, logSig, cosSig, cosSig), ErrMalformedCheckpoint},
		{"repeated log signature", note(body, logSig, logSig, cosSig), ErrMalformedCheckpoint},
		{"garbage signature line", note(body, logSig, cosSig, "nonsense"), ErrMalformedCheckpoint},
		{"empty", nil, ErrMalformedCheckpoint},
	} {
		_, err := OpenCheckpoint(tc.b, l.keys)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}

	// Signatures by keys we do not know (a witness) are ignored, in any
	// position.
	for _, b := range [][]byte{note(body, logSig, cosSig, witness), note(body, witness, cosSig, logSig)} {
		if _, err := OpenCheckpoint(b, l.keys); err != nil {
			t.Errorf("with a witness signature: %v", err)
		}
	}
	if _, err := OpenCheckpoint(good, nil); err == nil {
		t.Error("OpenCheckpoint with nil keys succeeded")
	}
}

// flipBase64 changes the first character of a base64 line to another valid
// one.
func flipBase64(s string) string {
	c := byte('A')
	if s[0] == 'A' {
		c = 'B'
	}
	return string(c) + s[1:]
}

// witnessSignature returns a cosignature line on body by a fresh witness key.
func witnessSignature(t testing.TB, body string) string {
	t.Helper()
	skey, _, err := note.GenerateKey(nil, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := note.Sign(&note.Note{Text: body}, s)
	if err != nil {
		t.Fatal(err)
	}
	_, sigs := splitNote(t, b)
	return sigs[0]
}

func FuzzOpenCheckpoint(f *testing.F) {
	golden := readGolden(f, "checkpoint")
	f.Add(golden)
	body, sigs := splitNote(f, golden)
	f.Add([]byte(body + "\n" + sigs[0] + "\n"))
	f.Add([]byte(body + "ext\n\n" + sigs[0] + "\n" + sigs[1] + "\n"))
	f.Add([]byte(body))
	keys := goldenKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := OpenCheckpoint(b, keys)
		if err != nil {
			for _, s := range []error{ErrMalformedCheckpoint, ErrWrongOrigin, ErrBadSignature, ErrMissingCosignature} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		// Whatever opens is a checkpoint of the golden log whose signed
		// body is exactly the formatted one.
		if cp.Origin != goldenOrigin || !bytes.HasPrefix(b, append(FormatCheckpoint(cp.Origin, cp.Size, cp.Hash), '\n')) {
			t.Fatalf("opened %+v from %q", cp, b)
		}
	})
}

// TestOpenLogSignedCheckpoint: a checkpoint signed by the log key alone
// opens as a witness would read it; the log's full checkpoint opens too;
// another log's, an unsigned one, or one signed by another key does not.
func TestOpenLogSignedCheckpoint(t *testing.T) {
	l := newTestLog(t, "spoor.example/a")
	var root [32]byte
	root[0] = 7
	logSigner, err := note.NewSigner(l.logSkey)
	if err != nil {
		t.Fatal(err)
	}
	body := FormatCheckpoint("spoor.example/a", 12, root)
	alone, err := note.Sign(&note.Note{Text: string(body)}, logSigner)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := OpenLogSignedCheckpoint(alone, l.keys.Log)
	if err != nil || cp.Size != 12 || cp.Hash != root || !cp.CosignedAt.IsZero() {
		t.Fatalf("log-signed alone: %+v, %v", cp, err)
	}
	if _, err := OpenCheckpoint(alone, l.keys); !errors.Is(err, ErrMissingCosignature) {
		t.Errorf("OpenCheckpoint of a checkpoint without the cosignature: %v", err)
	}
	full, err := l.signer.Sign("spoor.example/a", 12, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLogSignedCheckpoint(full, l.keys.Log); err != nil {
		t.Errorf("the log's full checkpoint: %v", err)
	}
	other := newTestLog(t, "spoor.example/a")
	if _, err := OpenLogSignedCheckpoint(alone, other.keys.Log); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signed by another key of the same name: %v", err)
	}
	b := newTestLog(t, "spoor.example/b")
	bSigner, err := note.NewSigner(b.logSkey)
	if err != nil {
		t.Fatal(err)
	}
	wrongOrigin, err := note.Sign(&note.Note{Text: string(FormatCheckpoint("spoor.example/a", 1, root))}, bSigner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLogSignedCheckpoint(wrongOrigin, b.keys.Log); !errors.Is(err, ErrWrongOrigin) {
		t.Errorf("a checkpoint naming another origin: %v", err)
	}
	if _, err := OpenLogSignedCheckpoint(body, l.keys.Log); !errors.Is(err, ErrMalformedCheckpoint) {
		t.Errorf("an unsigned body: %v", err)
	}
}
