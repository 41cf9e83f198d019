package events

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PayloadType is the DSSE payloadType of a disclosure event.
const PayloadType = "application/vnd.spoor.disclosure.v1+json"

// Reason is the code of a rejection. Codes are stable: they appear on the
// rejections stream, in the status API and as metric labels.
type Reason string

// The reasons an event is rejected (never stored).
const (
	ReasonMalformed     Reason = "malformed"        // not a DSSE envelope, or the payload is not a disclosure
	ReasonNonCanonical  Reason = "non_canonical"    // decodes, but not the one canonical byte form
	ReasonTooLarge      Reason = "too_large"        // over MaxEnvelopeSize
	ReasonInvalid       Reason = "invalid"          // a field fails validation
	ReasonUnknownParty  Reason = "unknown_party"    // discloser not in the covenant
	ReasonBadSignature  Reason = "bad_signature"    // signature does not verify
	ReasonKeyNotInForce Reason = "key_not_in_force" // key unknown to the party, or not valid at occurred_at
	ReasonKeyRevoked    Reason = "key_revoked"      // key revoked by a covenant version logged before the event
	ReasonWrongOrigin   Reason = "wrong_origin"     // meant for another log
	ReasonWrongSubject  Reason = "wrong_subject"    // NATS subject names another party than the discloser
	ReasonIDConflict    Reason = "id_conflict"      // same id already logged with other bytes
	// occurred_at more than the ledger's FutureSkew after its time of
	// recording (CheckOccurredInFuture)
	ReasonOccurredInFuture Reason = "occurred_in_future"
)

// RejectError says why an event was rejected. Its message never contains
// payload contents, only field names and the reason.
type RejectError struct {
	Reason Reason
	Err    error
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Detail() }

// Detail is the explanation without the reason code: what a Rejection's
// message holds beside its reason, so that a message has one prefix.
func (e *RejectError) Detail() string {
	if e.Err == nil {
		return "refused"
	}
	return e.Err.Error()
}
func (e *RejectError) Unwrap() error { return e.Err }

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// Sentinels that a KeyResolver wraps so Open can tell the reasons apart.
var (
	ErrUnknownParty  = errors.New("unknown party")
	ErrKeyNotInForce = errors.New("key not in force")
	ErrKeyRevoked    = errors.New("key revoked")
)

// Envelope is a parsed DSSE envelope in Spoor's strict profile: exactly one
// signature, and bytes equal to the standard JSON encoding of
// {payloadType, payload, signatures: [{keyid, sig}]} with strict padded
// base64. Raw holds those bytes, which are what is stored and hashed.
type Envelope struct {
	PayloadType string
	Payload     []byte
	KeyID       string
	Sig         []byte
	Raw         []byte
}

type wireSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

type wireEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"`
	Signatures  []wireSignature `json:"signatures"`
}

// PAE is DSSE's pre-authentication encoding, the bytes that are signed:
// "DSSEv1" SP len(type) SP type SP len(body) SP body.
func PAE(payloadType string, payload []byte) []byte {
	return appendPAE(make([]byte, 0, 32+len(payloadType)+len(payload)), payloadType, payload)
}

// appendPAE appends PAE(payloadType, payload) to b.
func appendPAE(b []byte, payloadType string, payload []byte) []byte {
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

func encodeEnvelope(payloadType string, payload []byte, keyID string, sig []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Encoding a struct of strings cannot fail.
	_ = enc.Encode(wireEnvelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []wireSignature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// SignEnvelope signs payload with priv and returns the canonical envelope.
func SignEnvelope(payloadType string, payload []byte, priv ed25519.PrivateKey) []byte {
	sig := ed25519.Sign(priv, PAE(payloadType, payload))
	return encodeEnvelope(payloadType, payload, KeyID(priv.Public().(ed25519.PublicKey)), sig)
}

// ParseEnvelope parses b in the strict profile, without checking the
// signature. Its errors are *RejectError with ReasonTooLarge, ReasonMalformed
// or ReasonNonCanonical.
func ParseEnvelope(b []byte) (*Envelope, error) {
	if env, ok := parseEnvelopeFast(b); ok {
		return env, nil
	}
	return parseEnvelopeStrict(b)
}

// parseEnvelopeStrict is ParseEnvelope by encoding/json and re-encoding: the
// reference that defines what is accepted, and the path that explains every
// rejection. parseEnvelopeFast takes the canonical inputs off its hands.
func parseEnvelopeStrict(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, reject(ReasonTooLarge, "envelope is %d bytes, the limit is %d", len(b), MaxEnvelopeSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireEnvelope
	if err := dec.Decode(&w); err != nil {
		return nil, reject(ReasonMalformed, "not a DSSE envelope: %w", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, reject(ReasonMalformed, "not a DSSE envelope: data after the JSON object")
	}
	if len(w.Signatures) != 1 {
		return nil, reject(ReasonMalformed, "envelope has %d signatures, want exactly 1", len(w.Signatures))
	}
	if w.PayloadType == "" {
		return nil, reject(ReasonMalformed, "envelope has no payloadType")
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(w.Payload)
	if err != nil {
		return nil, reject(ReasonNonCanonical, "payload is not strict standard padded base64")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(w.Signatures[0].Sig)
	if err != nil {
		return nil, reject(ReasonNonCanonical, "sig is not strict standard padded base64")
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, reject(ReasonMalformed, "sig is %d bytes, an Ed25519 signature is %d", len(sig), ed25519.SignatureSize)
	}
	canon := encodeEnvelope(w.PayloadType, payload, w.Signatures[0].KeyID, sig)
	if !bytes.Equal(canon, b) {
		return nil, reject(ReasonNonCanonical, "envelope bytes are not the canonical encoding (field order payloadType, payload, signatures; no whitespace)")
	}
	return &Envelope{PayloadType: w.PayloadType, Payload: payload, KeyID: w.Signatures[0].KeyID, Sig: sig, Raw: b}, nil
}

// Verify checks the signature with pub and that keyid is pub's fingerprint.
func (e *Envelope) Verify(pub ed25519.PublicKey) error {
	if err := e.checkKeyID(pub); err != nil {
		return err
	}
	// The PAE is as long as the payload and needed only for this call:
	// build it in a pooled buffer instead of allocating one per event.
	bp := paePool.Get().(*[]byte)
	msg := appendPAE((*bp)[:0], e.PayloadType, e.Payload)
	ok := verifySignature(pub, msg, e.Sig)
	if cap(msg) <= maxPooledPAE {
		*bp = msg
		paePool.Put(bp)
	}
	if !ok {
		return reject(ReasonBadSignature, "signature does not verify")
	}
	return nil
}

// checkKeyID refuses an envelope whose keyid is not pub's fingerprint.
func (e *Envelope) checkKeyID(pub ed25519.PublicKey) error {
	if !isKeyIDOf(e.KeyID, pub) {
		return reject(ReasonBadSignature, "keyid is not the fingerprint of the key in force")
	}
	return nil
}

// maxPooledPAE keeps the rare very large PAE out of the pool, so one big
// event does not pin 64 KiB per pooled buffer.
const maxPooledPAE = 16 << 10

var paePool = sync.Pool{New: func() any { return new([]byte) }}

// isKeyIDOf reports whether keyID is KeyID(pub), without allocating.
func isKeyIDOf(keyID string, pub ed25519.PublicKey) bool {
	sum := sha256.Sum256(pub)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return keyID == string(h[:])
}

// KeyResolver finds the public key a party had in force. It is implemented
// by the covenant version an event is checked against.
type KeyResolver interface {
	// PartyKey returns the key of party with fingerprint keyID if it was in
	// force at t, or an error wrapping ErrUnknownParty, ErrKeyNotInForce or
	// ErrKeyRevoked.
	PartyKey(party, keyID string, t time.Time) (ed25519.PublicKey, error)
}

// Seal prepares d for signing by k: it sets the discloser and derives the salt.
func Seal(d *Disclosure, k *PartyKey) {
	d.Discloser = k.Party
	d.Salt = DeriveSalt(k.SaltSecret, d.ID)
}

// Sign validates d and returns its canonical envelope signed by k. Call
// Seal first; Sign refuses a disclosure whose discloser is not k's party or
// whose salt is not the derived one, since a retry would not be recognised.
func Sign(d *Disclosure, k *PartyKey) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if d.Discloser != k.Party {
		return nil, fmt.Errorf("discloser %q is not the key's party %q", d.Discloser, k.Party)
	}
	if d.Salt != DeriveSalt(k.SaltSecret, d.ID) {
		return nil, errors.New("salt is not derived from the party's salt secret (call Seal)")
	}
	payload, err := d.MarshalCanonical()
	if err != nil {
		return nil, err
	}
	env := SignEnvelope(PayloadType, payload, k.Private)
	if len(env) > MaxEnvelopeSize {
		return nil, fmt.Errorf("signed envelope is %d bytes, the limit is %d", len(env), MaxEnvelopeSize)
	}
	return env, nil
}

// Open checks an envelope the way the ledger and every verifier do: strict
// profile, canonical payload, schema, origin, and the signature by the key
// keys has in force for the discloser at occurred_at. Every error is a
// *RejectError.
func Open(b []byte, origin string, keys KeyResolver) (*Disclosure, *Envelope, error) {
	return open(b, origin, keys, false)
}

// open is Open; with reference set it uses only the strict parsers and the
// full validation, which is what the differential tests compare Open with.
func open(b []byte, origin string, keys KeyResolver, reference bool) (*Disclosure, *Envelope, error) {
	d, env, pub, err := openUnsigned(b, origin, keys, reference)
	if err != nil {
		return nil, nil, err
	}
	if err := env.Verify(pub); err != nil {
		return nil, nil, err
	}
	return d, env, nil
}

// openUnsigned is every step of open but the signature check: it returns
// the key in force that the signature must verify under.
func openUnsigned(b []byte, origin string, keys KeyResolver, reference bool) (*Disclosure, *Envelope, ed25519.PublicKey, error) {
	parse, decode, validate := ParseEnvelope, DecodeDisclosure, (*Disclosure).Validate
	if reference {
		parse, decode, validate = parseEnvelopeStrict, decodeDisclosureStrict, (*Disclosure).validateAll
	}
	env, err := parse(b)
	if err != nil {
		return nil, nil, nil, err
	}
	if env.PayloadType != PayloadType {
		// The payloadType received is not repeated: the sender chose it.
		return nil, nil, nil, reject(ReasonMalformed, "payloadType is not %s", PayloadType)
	}
	d, err := decode(env.Payload)
	if err != nil {
		if errors.Is(err, ErrNonCanonical) {
			return nil, nil, nil, &RejectError{Reason: ReasonNonCanonical, Err: err}
		}
		return nil, nil, nil, &RejectError{Reason: ReasonMalformed, Err: err}
	}
	pub, err := checkDecoded(env, d, origin, keys, validate)
	if err != nil {
		return nil, nil, nil, err
	}
	return d, env, pub, nil
}

// CheckUnsigned makes the checks of Open on an envelope already parsed with
// ParseEnvelope and its payload decoded with DecodeDisclosure, except the
// signature: the payload type, the disclosure's validation, the origin, and
// the discloser's key in force at occurred_at and not revoked. It is for
// bytes whose signature was verified when they were logged and that their
// SHA-256 binds to that check: the ledger checking a bundle it built from
// its own store. Every error is a *RejectError, as Open's.
func CheckUnsigned(env *Envelope, d *Disclosure, origin string, keys KeyResolver) error {
	if env.PayloadType != PayloadType {
		return reject(ReasonMalformed, "payloadType is not %s", PayloadType)
	}
	_, err := checkDecoded(env, d, origin, keys, (*Disclosure).Validate)
	return err
}

// checkDecoded is what Open checks once the payload is decoded: the
// disclosure (with validate), its origin, and the discloser's key in force;
// it returns that key, which the signature must verify under.
func checkDecoded(env *Envelope, d *Disclosure, origin string, keys KeyResolver, validate func(*Disclosure) error) (ed25519.PublicKey, error) {
	if err := validate(d); err != nil {
		return nil, &RejectError{Reason: ReasonInvalid, Err: err}
	}
	if d.Origin != origin {
		// The event's own origin is not repeated: it is payload content,
		// and this message reaches the public status API.
		return nil, reject(ReasonWrongOrigin, "the event is for another log; this log is %q", origin)
	}
	pub, err := keys.PartyKey(d.Discloser, env.KeyID, d.OccurredAt)
	switch {
	case errors.Is(err, ErrUnknownParty):
		return nil, &RejectError{Reason: ReasonUnknownParty, Err: err}
	case errors.Is(err, ErrKeyRevoked):
		return nil, &RejectError{Reason: ReasonKeyRevoked, Err: err}
	case err != nil:
		return nil, &RejectError{Reason: ReasonKeyNotInForce, Err: err}
	}
	return pub, nil
}

// Opened is the outcome of opening one envelope of OpenMany: the
// disclosure and envelope, or the *RejectError.
type Opened struct {
	Disclosure *Disclosure
	Envelope   *Envelope
	Err        error
}

// OpenMany opens every envelope of bs exactly as Open does, one outcome
// per envelope, in order. The signatures of those that get that far are
// checked together as one batch (see verifySignatures), which costs about
// half as much per signature as one at a time and reaches the same
// verdicts.
func OpenMany(bs [][]byte, origin string, keys KeyResolver) []Opened {
	out := make([]Opened, len(bs))
	checks := make([]sigCheck, 0, len(bs))
	at := make([]int, 0, len(bs)) // out index of each check
	// The PAEs are needed only until the batch is verified: one pooled
	// buffer holds them all (a batch of 1024 needs about a megabyte).
	bp := paeBatchPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for i, b := range bs {
		d, env, pub, err := openUnsigned(b, origin, keys, false)
		if err == nil {
			err = env.checkKeyID(pub)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i] = Opened{Disclosure: d, Envelope: env}
		start := len(buf)
		buf = appendPAE(buf, env.PayloadType, env.Payload)
		checks = append(checks, sigCheck{pub: pub, msg: buf[start:len(buf):len(buf)], sig: env.Sig})
		at = append(at, i)
	}
	// buf may have moved while it grew: point each message at its place
	// in the final buffer.
	off := 0
	for j := range checks {
		n := len(checks[j].msg)
		checks[j].msg = buf[off : off+n : off+n]
		off += n
	}
	for j, ok := range verifySignatures(checks) {
		if !ok {
			out[at[j]] = Opened{Err: reject(ReasonBadSignature, "signature does not verify")}
		}
	}
	if cap(buf) <= maxPooledPAEBatch {
		*bp = buf
		paeBatchPool.Put(bp)
	}
	return out
}

// maxPooledPAEBatch keeps a buffer of a batch of very large envelopes out
// of the pool.
const maxPooledPAEBatch = 4 << 20

var paeBatchPool = sync.Pool{New: func() any { return new([]byte) }}

// strictJSON decodes one JSON value into v, refusing unknown fields and
// trailing data.
func strictJSON(b []byte, v any) error {
	return strictJSONNaming(b, v, false)
}

// strictJSONNaming is strictJSON whose errors may name an unknown member
// with a plain name (namePlain): for files the reader of the error wrote
// (a key file), never for what a sender sent.
func strictJSONNaming(b []byte, v any, namePlain bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok && namePlain && plainFieldNameRE.MatchString(name) {
			return err
		}
		return describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}
