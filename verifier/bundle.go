package verifier

// This file holds the inzage bundle: the answer to a parent's or young
// person's access request (AVG art. 15), as a JSON file that anyone can check
// offline with only the pinned log, cosigner and administrator keys.
//
// A bundle flows like this. The ledger's inzage workflow (answer.Service.BuildBundle in ledger/answer)
// takes ONE checkpoint (the head when it starts), looks up every disclosure
// about the child under each of its pseudonyms, and writes into the bundle,
// for each: the leaf index, the leaf record, the canonical envelope and the
// inclusion proof against that checkpoint. It adds every covenant version
// logged up to the checkpoint (the chain from version 1, each with its proof),
// the entries withheld on a legal ground (leaf record and proof, no envelope)
// and the tombstones of erased entries. VerifyBundle checks all of it against
// the pinned keys and returns a VerifiedBundle; the Dutch report (report.go)
// is rendered only from a VerifiedBundle, so it shows only what verified.
//
// Nothing in a bundle vouches for itself: the keys it names are there to be
// compared with the pinned ones, never to verify with.

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
)

// BundleFormat is the value of a bundle's "format" field.
const BundleFormat = "spoor.inzage-bundle/v1"

// BundleFormatV2 is the format of a bundle that carries its answer entry
// (Bundle.Answer), which proves its metadata.
const BundleFormatV2 = "spoor.inzage-bundle/v2"

// Size limits of a bundle. A bundle is read whole into memory, and every
// list in it is bounded so that a hostile file cannot make a verifier spend
// unbounded memory or time.
const (
	// MaxBundleSize is the largest bundle file accepted, in bytes.
	MaxBundleSize = 64 << 20
	// MaxBundleEntries bounds the disclosures, withheld and erased entries
	// together.
	MaxBundleEntries = 20000
	// MaxBundleCovenants bounds the covenant versions.
	MaxBundleCovenants = 1000
	// MaxBundlePseudonyms bounds the pseudonyms of the subject (one per
	// pseudonym key in use).
	MaxBundlePseudonyms = 16
	// MaxBundleParties bounds the parties in scope.
	MaxBundleParties = 1000
	// MaxProofLength bounds an inclusion proof (a tree of 2^64 leaves needs
	// at most 64 hashes).
	MaxProofLength = 64
)

// maxBundleText bounds the free-text fields of a bundle (request id).
const maxBundleText = 200

// Sentinels of VerifyBundle, one per class of failure. Every *BundleError
// wraps exactly one of them, so callers (and the tamper tests) can tell the
// classes apart with errors.Is.
var (
	// ErrPinnedKeys means VerifyBundle was called without the pinned log,
	// cosigner or administrator key: a bundle must not vouch for its own.
	ErrPinnedKeys = errors.New("verifier: the log, cosigner and administrator keys must be pinned")
	// ErrBundleMalformed means the file is not a well-formed bundle: not
	// JSON, unknown fields, truncated, over a size limit, a field out of
	// its range, a leaf listed twice.
	ErrBundleMalformed = errors.New("verifier: malformed bundle")
	// ErrBundleKeys means the keys the bundle names are not the pinned ones.
	ErrBundleKeys = errors.New("verifier: bundle names other keys than the pinned ones")
	// ErrCheckpoint means the bundle's checkpoint does not verify with the
	// pinned keys (signature, cosignature, origin, form).
	ErrCheckpoint = errors.New("verifier: bundle checkpoint does not verify")
	// ErrCovenant means a covenant version does not verify (not signed by
	// the pinned or previous administrator, does not follow its previous
	// version), or an entry was not checked against the covenant version in
	// force when it was logged.
	ErrCovenant = errors.New("verifier: covenant does not verify")
	// ErrLeafMismatch means a leaf record does not match its entry: another
	// body hash, entry type, erased index, rule or time.
	ErrLeafMismatch = errors.New("verifier: leaf record does not match its entry")
	// ErrInclusion means an inclusion proof does not verify against the
	// checkpoint.
	ErrInclusion = errors.New("verifier: inclusion proof does not verify")
	// ErrSignature means a disclosure envelope does not open under the
	// covenant version its leaf names: bad signature, a key not in force at
	// occurred_at or revoked, another origin, a malformed payload. The
	// *events.RejectError is wrapped too, so errors.Is finds
	// events.ErrKeyRevoked and events.ErrKeyNotInForce.
	ErrSignature = errors.New("verifier: disclosure signature does not verify")
	// ErrOtherSubject means a disclosure concerns another data subject than
	// the bundle's pseudonyms.
	ErrOtherSubject = errors.New("verifier: disclosure about another subject")
)

// Base64Bytes is a byte string that JSON carries as strict standard padded
// base64 without line breaks (encoding/json's own []byte decoding, and even
// base64's Strict mode, skip them).
type Base64Bytes []byte

// MarshalJSON encodes the bytes as standard padded base64.
func (b Base64Bytes) MarshalJSON() ([]byte, error) {
	// Base64 needs no JSON escaping, so the quoted text is the JSON
	// string: the bytes json.Marshal of the string would give, without its
	// reflection and copies (a bundle holds thousands of these).
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"'), nil
}

// UnmarshalJSON decodes strict standard padded base64.
func (b *Base64Bytes) UnmarshalJSON(data []byte) error {
	if inner, ok := plainBase64String(data); ok {
		// A quoted run of base64 characters holds no escape, so it is its
		// own string value: the same check as below, without decoding the
		// JSON string first.
		v, err := base64.StdEncoding.Strict().DecodeString(inner)
		if err != nil {
			return errors.New("not strict standard padded base64")
		}
		*b = v
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("want a base64 string")
	}
	// Strict decoding still skips line breaks; one byte string has one
	// form here.
	v, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || strings.ContainsAny(s, "\r\n") {
		return errors.New("not strict standard padded base64")
	}
	*b = v
	return nil
}

// plainBase64String returns the text between the quotes of a JSON string
// literal made only of base64 characters, and whether data is one.
func plainBase64String(data []byte) (string, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return "", false
	}
	inner := data[1 : len(data)-1]
	for _, c := range inner {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return "", false
		}
	}
	return string(inner), true
}

// Bundle is an inzage bundle as it is written to and read from JSON. Field
// order is the file's order.
type Bundle struct {
	// Format is BundleFormat.
	Format string `json:"format"`
	// Origin is the log the bundle comes from (the checkpoint's origin).
	Origin string `json:"origin"`
	// CreatedAt is when the ledger built the bundle (its own clock).
	CreatedAt time.Time `json:"created_at"`
	// Subject is the child the request is about, by pseudonym only.
	Subject BundleSubject `json:"subject"`
	// Scope says whose disclosures the answer covers.
	Scope BundleScope `json:"scope"`
	// Request describes the access request the bundle answers.
	Request InzageRequest `json:"request"`
	// Checkpoint is the signed, cosigned checkpoint every proof is against.
	Checkpoint string `json:"checkpoint"`
	// LogVkey and CosignerVkey are the log's verifier keys, for information
	// only: verification uses the pinned keys and only compares these.
	LogVkey      string `json:"log_vkey"`
	CosignerVkey string `json:"cosigner_vkey"`
	// Covenants are the covenant versions logged up to the checkpoint, from
	// version 1 on, in log order.
	Covenants []BundleEntry `json:"covenants"`
	// Entries are the disclosures about the subject, in log order.
	Entries []BundleEntry `json:"entries"`
	// Withheld are disclosures about the subject withheld on a legal ground.
	Withheld []WithheldEntry `json:"withheld"`
	// Erased are the tombstones of disclosures about the subject that were
	// erased when their retention period ended.
	Erased []ErasedEntry `json:"erased"`
	// Witnessed are, when the covenant has a witness policy, for the
	// bundle's entries the first checkpoint cosigned by the policy's
	// quorum that includes each (de-duplicated, by increasing size), each
	// with a consistency proof to Checkpoint: the witnesses' times bound
	// when each entry was logged at the latest. Absent in bundles without
	// witnesses, which are then byte for byte what they were before;
	// verifiers older than this field refuse bundles that carry it.
	Witnessed []WitnessedCheckpoint `json:"witnessed,omitempty"`
	// Answer is, in a v2 bundle (BundleFormatV2), the answer entry the
	// ledger logged at release, with its inclusion proof in Checkpoint:
	// every piece of the bundle's metadata must equal what it says.
	// Absent in v1 bundles, whose metadata is then not proven.
	Answer *BundleAnswer `json:"answer,omitempty"`
	// Index is, in a v3 bundle (BundleFormatV3), the proof that the
	// bundle is complete (bundleindex.go). Absent in v1 and v2 bundles,
	// whose completeness is then not proven.
	Index *BundleIndex `json:"index,omitempty"`
}

// BundleAnswer is a bundle's answer entry: its leaf, leaf record,
// inclusion proof and body (verifier.AnswerBody's canonical bytes).
type BundleAnswer struct {
	Index          uint64        `json:"index"`
	LeafRecord     Base64Bytes   `json:"leaf_record"`
	InclusionProof []Base64Bytes `json:"inclusion_proof"`
	Body           Base64Bytes   `json:"body"`
}

// WitnessedCheckpoint is an earlier witnessed checkpoint of the log, with
// the consistency proof from its tree to the bundle's checkpoint's.
type WitnessedCheckpoint struct {
	Checkpoint       string        `json:"checkpoint"`
	ConsistencyProof []Base64Bytes `json:"consistency_proof"`
}

// MaxBundleWitnessed bounds a bundle's witnessed checkpoints: one per
// entry at most.
const MaxBundleWitnessed = MaxBundleEntries

// BundleSubject is the data subject of a bundle: its identifier type and one
// pseudonym per pseudonym key in use (an access request looks under each).
type BundleSubject struct {
	IDType     events.IDType      `json:"id_type"`
	Pseudonyms []SubjectPseudonym `json:"pseudonyms"`
}

// SubjectPseudonym is the subject's pseudonym under one key K_v.
type SubjectPseudonym struct {
	KeyID     string `json:"key_id"`
	Pseudonym string `json:"pseudonym"`
}

// BundleScope says whose disclosures a bundle covers: the parties the
// privacy desk answers for, all of them when the covenant names a central
// desk.
type BundleScope struct {
	Parties     []string `json:"parties"`
	CentralDesk bool     `json:"central_desk"`
}

// InzageRequest is the access request a bundle answers, kept minimal: no
// names of the requester or of desk staff.
type InzageRequest struct {
	// ID is the desk's request id.
	ID string `json:"id"`
	// Relation is who asked, in relation to the child: one of the Relation
	// constants.
	Relation string `json:"relation"`
	// RequestedAt is when the request was registered; ReleasedAt when a
	// second person of the desk released the answer.
	RequestedAt time.Time `json:"requested_at"`
	ReleasedAt  time.Time `json:"released_at"`
}

// Who may make an access request about a child: a parent with parental
// authority or a guardian (for a child under 16), or the young person
// (alone, from 16).
const (
	RelationParent      = "parent"
	RelationGuardian    = "guardian"
	RelationYoungPerson = "young-person"
)

// Relations lists every relation a requester may have. Their Dutch words
// are in the report package (verifier/report).
func Relations() []string { return []string{RelationParent, RelationGuardian, RelationYoungPerson} }

// ValidRelation reports whether relation is one of Relations.
func ValidRelation(relation string) bool { return slices.Contains(Relations(), relation) }

// The legal grounds on which an entry may be withheld from an access answer.
const (
	// WithholdAVG23 is a restriction of the right of access under AVG
	// art. 23 (for example to protect the data subject or others).
	WithholdAVG23 = "avg-23"
	// WithholdUAVG41 is the exception of UAVG art. 41, which implements
	// art. 23 in Dutch law.
	WithholdUAVG41 = "uavg-41"
)

// WithholdGrounds lists every ground on which an entry may be withheld.
// Their Dutch words are in the report package (verifier/report).
func WithholdGrounds() []string { return []string{WithholdAVG23, WithholdUAVG41} }

// ValidWithholdGround reports whether ground is one of WithholdGrounds.
func ValidWithholdGround(ground string) bool { return slices.Contains(WithholdGrounds(), ground) }

// BundleEntry is one logged entry with its proof: a disclosure envelope or
// a signed covenant.
type BundleEntry struct {
	Index          uint64        `json:"index"`
	LeafRecord     Base64Bytes   `json:"leaf_record"`
	Envelope       Base64Bytes   `json:"envelope"`
	InclusionProof []Base64Bytes `json:"inclusion_proof"`
}

// WithheldEntry is a disclosure withheld on a legal ground: its leaf record
// and proof show that it exists and when it was logged, not what it says.
type WithheldEntry struct {
	Index          uint64        `json:"index"`
	LeafRecord     Base64Bytes   `json:"leaf_record"`
	InclusionProof []Base64Bytes `json:"inclusion_proof"`
	// Ground is one of the Withhold constants.
	Ground string `json:"ground"`
}

// ErasedEntry is the tombstone of an erased disclosure: which leaf was
// erased, by which retention rule, and when.
type ErasedEntry struct {
	// Index is the tombstone's own leaf index.
	Index          uint64        `json:"index"`
	LeafRecord     Base64Bytes   `json:"leaf_record"`
	InclusionProof []Base64Bytes `json:"inclusion_proof"`
	// Body is the tombstone entry's body, when the bundle carries it; its
	// SHA-256 is then checked against the leaf record.
	Body Base64Bytes `json:"body,omitempty"`
	// ErasedIndex, RuleID and ErasedAt repeat what the leaf record commits
	// to (the erased leaf, the retention rule, the tombstone's
	// integrated_at), so that a reader of the JSON need not decode it.
	ErasedIndex uint64    `json:"erased_index"`
	RuleID      string    `json:"rule_id"`
	ErasedAt    time.Time `json:"erased_at"`
}

// BundleError is one check of a bundle that failed, and where.
type BundleError struct {
	// Section is the part of the bundle: "bundle", "keys", "checkpoint",
	// "covenants", "entries", "withheld" or "erased".
	Section string
	// Item is the position in the section's list, or -1.
	Item int
	// Leaf is the leaf index concerned, valid when HasLeaf.
	Leaf    uint64
	HasLeaf bool
	// Check names the check that failed, for example "inclusion",
	// "signature", "leaf-record", "subject", "chain".
	Check string
	// Err wraps one of the sentinels (ErrBundleMalformed, ErrCheckpoint ...).
	Err error
}

func (e *BundleError) Error() string {
	var b strings.Builder
	b.WriteString(e.Section)
	if e.Item >= 0 {
		fmt.Fprintf(&b, "[%d]", e.Item)
	}
	if e.HasLeaf {
		fmt.Fprintf(&b, " (leaf %d)", e.Leaf)
	}
	b.WriteString(": ")
	if e.Check != "" {
		b.WriteString(e.Check)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *BundleError) Unwrap() error { return e.Err }

// BundleErrors is every failed check of a bundle, in the order checked.
type BundleErrors []*BundleError

// maxListedErrors bounds how many problems Error spells out.
const maxListedErrors = 20

func (es BundleErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the bundle does not verify (%d problem", len(es))
	if len(es) != 1 {
		b.WriteByte('s')
	}
	b.WriteString("): ")
	for i, e := range es {
		if i == maxListedErrors {
			fmt.Fprintf(&b, "; and %d more", len(es)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As look into every problem.
func (es BundleErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// MarshalBundle encodes a bundle as indented JSON, the form written to
// bundle.json: byte for byte what encoding/json's Encoder gives with
// SetEscapeHTML(false) and SetIndent("", "  ") (the tests hold it to
// that), written directly. A bundle is mostly base64, which the reflecting
// encoder would copy three times (marshal, compact, indent); an inzage
// answer's time went mostly there.
func MarshalBundle(b *Bundle) ([]byte, error) {
	w := bundleWriter{buf: make([]byte, 0, bundleSizeGuess(b))}
	w.open('{')
	w.key("format")
	w.str(b.Format)
	w.key("origin")
	w.str(b.Origin)
	w.key("created_at")
	w.time(b.CreatedAt)
	w.key("subject")
	w.open('{')
	w.key("id_type")
	w.str(string(b.Subject.IDType))
	w.key("pseudonyms")
	if b.Subject.Pseudonyms == nil {
		w.null()
	} else {
		w.open('[')
		for _, p := range b.Subject.Pseudonyms {
			w.elem()
			w.open('{')
			w.key("key_id")
			w.str(p.KeyID)
			w.key("pseudonym")
			w.str(p.Pseudonym)
			w.close('}')
		}
		w.close(']')
	}
	w.close('}')
	w.key("scope")
	w.open('{')
	w.key("parties")
	w.strs(b.Scope.Parties)
	w.key("central_desk")
	w.bool(b.Scope.CentralDesk)
	w.close('}')
	w.key("request")
	w.open('{')
	w.key("id")
	w.str(b.Request.ID)
	w.key("relation")
	w.str(b.Request.Relation)
	w.key("requested_at")
	w.time(b.Request.RequestedAt)
	w.key("released_at")
	w.time(b.Request.ReleasedAt)
	w.close('}')
	w.key("checkpoint")
	w.str(b.Checkpoint)
	w.key("log_vkey")
	w.str(b.LogVkey)
	w.key("cosigner_vkey")
	w.str(b.CosignerVkey)
	for _, list := range []struct {
		name    string
		entries []BundleEntry
	}{{"covenants", b.Covenants}, {"entries", b.Entries}} {
		w.key(list.name)
		if list.entries == nil {
			w.null()
			continue
		}
		w.open('[')
		for _, e := range list.entries {
			w.elem()
			w.open('{')
			w.key("index")
			w.uint(e.Index)
			w.key("leaf_record")
			w.b64(e.LeafRecord)
			w.key("envelope")
			w.b64(e.Envelope)
			w.key("inclusion_proof")
			w.proof(e.InclusionProof)
			w.close('}')
		}
		w.close(']')
	}
	w.key("withheld")
	if b.Withheld == nil {
		w.null()
	} else {
		w.open('[')
		for _, e := range b.Withheld {
			w.elem()
			w.open('{')
			w.key("index")
			w.uint(e.Index)
			w.key("leaf_record")
			w.b64(e.LeafRecord)
			w.key("inclusion_proof")
			w.proof(e.InclusionProof)
			w.key("ground")
			w.str(e.Ground)
			w.close('}')
		}
		w.close(']')
	}
	w.key("erased")
	if b.Erased == nil {
		w.null()
	} else {
		w.open('[')
		for _, e := range b.Erased {
			w.elem()
			w.open('{')
			w.key("index")
			w.uint(e.Index)
			w.key("leaf_record")
			w.b64(e.LeafRecord)
			w.key("inclusion_proof")
			w.proof(e.InclusionProof)
			if len(e.Body) > 0 {
				w.key("body")
				w.b64(e.Body)
			}
			w.key("erased_index")
			w.uint(e.ErasedIndex)
			w.key("rule_id")
			w.str(e.RuleID)
			w.key("erased_at")
			w.time(e.ErasedAt)
			w.close('}')
		}
		w.close(']')
	}
	if len(b.Witnessed) > 0 { // omitempty, as the struct tag says
		w.key("witnessed")
		w.open('[')
		for _, wc := range b.Witnessed {
			w.elem()
			w.open('{')
			w.key("checkpoint")
			w.str(wc.Checkpoint)
			w.key("consistency_proof")
			w.proof(wc.ConsistencyProof)
			w.close('}')
		}
		w.close(']')
	}
	if a := b.Answer; a != nil {
		w.key("answer")
		w.open('{')
		w.key("index")
		w.uint(a.Index)
		w.key("leaf_record")
		w.b64(a.LeafRecord)
		w.key("inclusion_proof")
		w.proof(a.InclusionProof)
		w.key("body")
		w.b64(a.Body)
		w.close('}')
	}
	if b.Index != nil {
		w.index(b.Index)
	}
	w.close('}')
	if w.err != nil {
		return nil, fmt.Errorf("couldn't encode bundle: %w", w.err)
	}
	return append(w.buf, '\n'), nil
}

// bundleSizeGuess is about the size of b's JSON, so that MarshalBundle
// grows its buffer once or not at all.
func bundleSizeGuess(b *Bundle) int {
	n := 4096 + len(b.Checkpoint)
	entry := func(rec, body []byte, proof []Base64Bytes) int {
		return 160 + (len(rec)+len(body))*4/3 + len(proof)*56
	}
	for _, e := range b.Covenants {
		n += entry(e.LeafRecord, e.Envelope, e.InclusionProof)
	}
	for _, e := range b.Entries {
		n += entry(e.LeafRecord, e.Envelope, e.InclusionProof)
	}
	for _, e := range b.Withheld {
		n += entry(e.LeafRecord, nil, e.InclusionProof)
	}
	for _, wc := range b.Witnessed {
		n += 80 + len(wc.Checkpoint) + len(wc.ConsistencyProof)*56
	}
	if a := b.Answer; a != nil {
		n += entry(a.LeafRecord, a.Body, a.InclusionProof)
	}
	if x := b.Index; x != nil {
		n += entry(x.Head.LeafRecord, x.Head.Body, x.Head.InclusionProof)
		for _, p := range x.Proofs {
			n += 120 + (len(p.VRFProof)+len(p.List)+len(p.Proof))*4/3
		}
	}
	for _, e := range b.Erased {
		n += entry(e.LeafRecord, e.Body, e.InclusionProof)
	}
	return n
}

// bundleWriter writes indented JSON (two spaces per level, no prefix, as
// json.Indent lays it out: an empty array or object stays "[]" or "{}").
type bundleWriter struct {
	buf   []byte
	depth int
	// first is true right after an opening bracket: the next member or
	// element needs no comma, and if none comes the bracket closes on
	// the same line.
	first bool
	err   error
}

func (w *bundleWriter) newline() {
	w.buf = append(w.buf, '\n')
	for range w.depth {
		w.buf = append(w.buf, ' ', ' ')
	}
}

func (w *bundleWriter) open(c byte) {
	w.buf = append(w.buf, c)
	w.depth++
	w.first = true
}

func (w *bundleWriter) close(c byte) {
	w.depth--
	if !w.first {
		w.newline()
	}
	w.buf = append(w.buf, c)
	w.first = false
}

// elem starts an array element.
func (w *bundleWriter) elem() {
	if !w.first {
		w.buf = append(w.buf, ',')
	}
	w.first = false
	w.newline()
}

// key starts an object member.
func (w *bundleWriter) key(k string) {
	w.elem()
	w.str(k)
	w.buf = append(w.buf, ':', ' ')
}

func (w *bundleWriter) null() { w.buf = append(w.buf, "null"...) }

func (w *bundleWriter) bool(v bool) { w.buf = strconv.AppendBool(w.buf, v) }

func (w *bundleWriter) uint(v uint64) { w.buf = strconv.AppendUint(w.buf, v, 10) }

// str writes a JSON string. Printable ASCII without quote or backslash is
// written as it is; anything else goes through encoding/json, so that its
// escaping rules apply unchanged.
func (w *bundleWriter) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(s); err != nil && w.err == nil {
				w.err = err
			}
			w.buf = append(w.buf, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
			return
		}
	}
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '"')
}

func (w *bundleWriter) strs(list []string) {
	if list == nil {
		w.null()
		return
	}
	w.open('[')
	for _, s := range list {
		w.elem()
		w.str(s)
	}
	w.close(']')
}

func (w *bundleWriter) time(t time.Time) {
	b, err := t.MarshalJSON()
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	w.buf = append(w.buf, b...)
}

func (w *bundleWriter) b64(b []byte) {
	w.buf = append(w.buf, '"')
	w.buf = base64.StdEncoding.AppendEncode(w.buf, b)
	w.buf = append(w.buf, '"')
}

func (w *bundleWriter) proof(p []Base64Bytes) {
	if p == nil {
		w.null()
		return
	}
	w.open('[')
	for _, h := range p {
		w.elem()
		w.b64(h)
	}
	w.close(']')
}

var (
	bundleKeyIDRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)
	bundleHex64RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	bundlePartyIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// ParseBundle decodes a bundle strictly and checks its structure (not its
// signatures or proofs): the size limit, no unknown fields or trailing data,
// the format, every field in its range, leaf indices in increasing order
// within each list and no leaf listed twice. Errors are BundleErrors
// wrapping ErrBundleMalformed.
func ParseBundle(data []byte) (*Bundle, error) {
	malformed := func(section string, item int, format string, args ...any) error {
		return BundleErrors{{Section: section, Item: item, Check: "structure",
			Err: fmt.Errorf("%w: %s", ErrBundleMalformed, fmt.Sprintf(format, args...))}}
	}
	if len(data) > MaxBundleSize {
		return nil, malformed("bundle", -1, "%d bytes is more than the limit of %d", len(data), MaxBundleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, malformed("bundle", -1, "%s", describeBundleJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("bundle", -1, "data after the JSON object")
	}
	if err := CheckBundle(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

// CheckBundle runs ParseBundle's structural checks (everything but the
// JSON decoding) on a bundle held in memory: the builder runs it before it
// writes a bundle, so that a request the parent's verifier would refuse as
// malformed is refused by the same code. Errors are BundleErrors wrapping
// ErrBundleMalformed.
func CheckBundle(b *Bundle) error {
	malformed := func(section string, item int, format string, args ...any) error {
		return BundleErrors{{Section: section, Item: item, Check: "structure",
			Err: fmt.Errorf("%w: %s", ErrBundleMalformed, fmt.Sprintf(format, args...))}}
	}
	switch {
	case b.Format != BundleFormat && b.Format != BundleFormatV2 && b.Format != BundleFormatV3:
		return malformed("bundle", -1, "format is %q, want %q, %q or %q", clip(b.Format), BundleFormatV3, BundleFormatV2, BundleFormat)
	case b.Format == BundleFormatV2 && b.Answer == nil:
		return malformed("answer", -1, "a %s bundle carries its answer entry", BundleFormatV2)
	case b.Format == BundleFormat && b.Answer != nil:
		return malformed("answer", -1, "a %s bundle carries no answer entry", BundleFormat)
	}
	if section, err := checkIndexStructure(b); err != nil {
		return malformed(section, -1, "%s", err)
	}
	if a := b.Answer; a != nil {
		if len(a.LeafRecord) == 0 || len(a.LeafRecord) > MaxLeafRecordSize || len(a.Body) == 0 || len(a.Body) > MaxAnswerBodySize {
			return malformed("answer", -1, "leaf record of %d bytes, body of %d", len(a.LeafRecord), len(a.Body))
		}
		if len(a.InclusionProof) > MaxProofLength {
			return malformed("answer", -1, "inclusion proof of %d hashes (at most %d)", len(a.InclusionProof), MaxProofLength)
		}
		for j, h := range a.InclusionProof {
			if len(h) != sha256.Size {
				return malformed("answer", -1, "inclusion proof element %d is %d bytes, want %d", j, len(h), sha256.Size)
			}
		}
	}
	if !validOrigin(b.Origin) {
		return malformed("bundle", -1, "origin is not a log origin")
	}
	if b.CreatedAt.IsZero() {
		return malformed("bundle", -1, "created_at is missing")
	}
	if b.Checkpoint == "" {
		return malformed("checkpoint", -1, "the bundle has no checkpoint")
	}
	if err := checkBundleSubject(&b.Subject); err != nil {
		return malformed("bundle", -1, "subject: %s", err)
	}
	if len(b.Scope.Parties) > MaxBundleParties {
		return malformed("bundle", -1, "scope lists %d parties, the limit is %d", len(b.Scope.Parties), MaxBundleParties)
	}
	for i, p := range b.Scope.Parties {
		if !bundlePartyIDRE.MatchString(p) || slices.Index(b.Scope.Parties, p) != i {
			return malformed("bundle", -1, "scope.parties[%d] is not a party id or repeats one", i)
		}
	}
	if err := checkInzageRequest(&b.Request); err != nil {
		return malformed("bundle", -1, "request: %s", err)
	}
	if n := len(b.Covenants); n == 0 || n > MaxBundleCovenants {
		return malformed("covenants", -1, "%d covenant versions, want 1 to %d (every bundle carries the chain from version 1)", n, MaxBundleCovenants)
	}
	if n := len(b.Entries) + len(b.Withheld) + len(b.Erased); n > MaxBundleEntries {
		return malformed("entries", -1, "%d entries, the limit is %d", n, MaxBundleEntries)
	}
	if len(b.Witnessed) > MaxBundleWitnessed {
		return malformed("witnessed", -1, "%d witnessed checkpoints, the limit is %d", len(b.Witnessed), MaxBundleWitnessed)
	}
	for i, w := range b.Witnessed {
		if w.Checkpoint == "" || len(w.Checkpoint) > MaxCheckpointSize {
			return malformed("witnessed", i, "checkpoint of %d bytes", len(w.Checkpoint))
		}
		if len(w.ConsistencyProof) > MaxProofLength {
			return malformed("witnessed", i, "consistency proof of %d hashes (at most %d)", len(w.ConsistencyProof), MaxProofLength)
		}
		for j, h := range w.ConsistencyProof {
			if len(h) != sha256.Size {
				return malformed("witnessed", i, "consistency proof element %d is %d bytes, want %d", j, len(h), sha256.Size)
			}
		}
	}
	seen := map[uint64]string{}
	leaf := func(section string, i int, index uint64, prev *uint64, rec []byte, proof []Base64Bytes) error {
		if i > 0 && index <= *prev {
			return malformed(section, i, "leaf indices are not in increasing order")
		}
		*prev = index
		if other, ok := seen[index]; ok {
			return malformed(section, i, "leaf %d is listed in %s already", index, other)
		}
		seen[index] = section
		if len(rec) == 0 || len(rec) > MaxLeafRecordSize {
			return malformed(section, i, "leaf record of %d bytes (at most %d)", len(rec), MaxLeafRecordSize)
		}
		if len(proof) > MaxProofLength {
			return malformed(section, i, "inclusion proof of %d hashes (at most %d)", len(proof), MaxProofLength)
		}
		for j, h := range proof {
			if len(h) != sha256.Size {
				return malformed(section, i, "inclusion proof element %d is %d bytes, want %d", j, len(h), sha256.Size)
			}
		}
		return nil
	}
	var prev uint64
	for i, e := range b.Covenants {
		if err := leaf("covenants", i, e.Index, &prev, e.LeafRecord, e.InclusionProof); err != nil {
			return err
		}
		if len(e.Envelope) == 0 || len(e.Envelope) > events.MaxEnvelopeSize {
			return malformed("covenants", i, "signed covenant of %d bytes (1 to %d)", len(e.Envelope), events.MaxEnvelopeSize)
		}
	}
	for i, e := range b.Entries {
		if err := leaf("entries", i, e.Index, &prev, e.LeafRecord, e.InclusionProof); err != nil {
			return err
		}
		if len(e.Envelope) == 0 || len(e.Envelope) > events.MaxEnvelopeSize {
			return malformed("entries", i, "envelope of %d bytes (1 to %d)", len(e.Envelope), events.MaxEnvelopeSize)
		}
	}
	for i, e := range b.Withheld {
		if err := leaf("withheld", i, e.Index, &prev, e.LeafRecord, e.InclusionProof); err != nil {
			return err
		}
		if !ValidWithholdGround(e.Ground) {
			return malformed("withheld", i, "ground is not one of %s, %s", WithholdAVG23, WithholdUAVG41)
		}
	}
	for i, e := range b.Erased {
		if err := leaf("erased", i, e.Index, &prev, e.LeafRecord, e.InclusionProof); err != nil {
			return err
		}
		if len(e.Body) > events.MaxEnvelopeSize {
			return malformed("erased", i, "tombstone body of %d bytes (at most %d)", len(e.Body), events.MaxEnvelopeSize)
		}
		if !validRuleID(e.RuleID) {
			return malformed("erased", i, "rule_id is not 1..%d characters of [a-z0-9._:-]", MaxRuleIDLength)
		}
		if e.ErasedAt.IsZero() {
			return malformed("erased", i, "erased_at is missing")
		}
	}
	for i, e := range b.Erased {
		if sec, ok := seen[e.ErasedIndex]; ok && sec != "erased" {
			return malformed("erased", i, "erased leaf %d is also listed in %s", e.ErasedIndex, sec)
		}
	}
	return nil
}

func checkBundleSubject(s *BundleSubject) error {
	if s.IDType != events.IDTypeBSN && s.IDType != events.IDTypeOnderwijsnummer {
		return fmt.Errorf("id_type must be %q or %q", events.IDTypeBSN, events.IDTypeOnderwijsnummer)
	}
	if n := len(s.Pseudonyms); n == 0 || n > MaxBundlePseudonyms {
		return fmt.Errorf("%d pseudonyms, want 1 to %d", n, MaxBundlePseudonyms)
	}
	for i, p := range s.Pseudonyms {
		if !bundleKeyIDRE.MatchString(p.KeyID) || !bundleHex64RE.MatchString(p.Pseudonym) {
			return fmt.Errorf("pseudonyms[%d] is not a key id with 64 lower-case hex characters", i)
		}
		for _, q := range s.Pseudonyms[:i] {
			if q.KeyID == p.KeyID {
				return fmt.Errorf("pseudonyms[%d] repeats key id %q", i, p.KeyID)
			}
		}
	}
	return nil
}

func checkInzageRequest(r *InzageRequest) error {
	if r.ID == "" || len(r.ID) > maxBundleText || !printable(r.ID) {
		return fmt.Errorf("id must be 1 to %d printable characters", maxBundleText)
	}
	if !ValidRelation(r.Relation) {
		return fmt.Errorf("relation must be %s, %s or %s", RelationParent, RelationGuardian, RelationYoungPerson)
	}
	if r.RequestedAt.IsZero() || r.ReleasedAt.IsZero() {
		return errors.New("requested_at and released_at are required")
	}
	if r.ReleasedAt.Before(r.RequestedAt) {
		return errors.New("released_at is before requested_at")
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// clip shortens an untrusted string for a message.
func clip(s string) string {
	if len(s) > 40 || !printable(s) {
		return "(not shown)"
	}
	return s
}

// describeBundleJSONError names what is wrong without repeating values from
// the input (encoding/json puts the literal of a mistyped number in its
// message; a bundle is not supposed to hold a BSN, but a broken one might).
func describeBundleJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		kind, _, _ := strings.Cut(te.Value, " ")
		return fmt.Sprintf("field %s: wrong type (JSON %s, want %s)", te.Field, kind, te.Type)
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF):
		return "empty file"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the file ends early (truncated?)"
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return "a time is not RFC 3339"
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + clip(name)
	}
	if strings.HasPrefix(msg, "json: ") || strings.Contains(msg, "base64") {
		// Our own Base64Bytes errors and encoding/json's structural ones
		// carry no values.
		return msg
	}
	return "not a bundle"
}

// VerifiedBundle is a bundle whose every part verified against the pinned
// keys. The report is rendered from it.
type VerifiedBundle struct {
	// Bundle is the decoded bundle.
	Bundle *Bundle
	// Checkpoint is the opened checkpoint every proof was checked against.
	Checkpoint *Checkpoint
	// LogKey, CosignerKey and AdminKey are the fingerprints (name+hash, see
	// KeyFingerprint) of the pinned keys the bundle was checked with.
	LogKey, CosignerKey, AdminKey string
	// Covenants are the covenant versions, from version 1 on.
	Covenants []*VerifiedCovenant
	// Disclosures are the opened disclosures, in log order.
	Disclosures []*VerifiedDisclosure
	// Withheld are the entries withheld on a legal ground.
	Withheld []*VerifiedWithheld
	// Erased are the tombstones of erased entries.
	Erased []*VerifiedErasure
	// Completeness is what a v3 bundle's index proofs established; nil
	// for a v1 or v2 bundle ("volledigheid niet bewezen").
	Completeness *Completeness
	// Answer is the bundle's answer entry (v2 bundles), against which its
	// metadata was checked; nil for a v1 bundle, whose metadata is the
	// builder's word only.
	Answer *VerifiedAnswer
	// Witnesses is what the witness policy of the covenant in force at
	// the checkpoint said of it; nil when that version has none and no
	// policy was given (the checkpoint then is the operator's word only:
	// "niet onafhankelijk bevestigd").
	Witnesses *WitnessCheck
}

// WitnessCheck is the witness policy's verdict on a bundle's checkpoint.
// VerifyBundle fails when the quorum is not met, so a VerifiedBundle's is
// always met.
type WitnessCheck struct {
	// Cosigned are the policy's witnesses whose cosignature verifies, in
	// policy order, with the time each states.
	Cosigned []WitnessCosignature
	// LatestAt is the latest time among Cosigned: the checkpoint's tree,
	// and every entry the bundle proves in it, existed at that time at
	// the latest, as long as one of them is honest.
	LatestAt time.Time
}

// checkWitnessed checks the bundle's earlier witnessed checkpoints: each
// opens with the log's keys, meets the policy of the covenant version in
// force at its size (and extra), and is consistent with cp; sizes increase
// and none is beyond cp. It returns, for a leaf index, the latest
// cosignature time of the first of them (or of cp) that includes it; nil
// when no policy applies.
func (c *bundleCheck) checkWitnessed(b *Bundle, cp *Checkpoint, vb *VerifiedBundle, keys *LogKeys, extra *events.WitnessPolicy) func(uint64) time.Time {
	if vb.Witnesses == nil {
		if len(b.Witnessed) > 0 {
			c.fail("witnessed", -1, 0, false, "witnesses", ErrWitnesses, "the bundle carries witnessed checkpoints, but no witness policy applies to it")
		}
		return nil
	}
	type bound struct {
		size uint64
		at   time.Time
	}
	var bounds []bound
	var prev uint64
	for i, w := range b.Witnessed {
		wcp, err := OpenCheckpoint([]byte(w.Checkpoint), keys)
		if err != nil {
			c.fail("witnessed", i, 0, false, "signature", ErrCheckpoint, "%v", err)
			return nil
		}
		if wcp.Origin != cp.Origin || wcp.Size <= prev || wcp.Size > cp.Size {
			c.fail("witnessed", i, 0, false, "order", ErrWitnesses, "size %d: not after the previous one (%d) and within the checkpoint's %d", wcp.Size, prev, cp.Size)
			return nil
		}
		prev = wcp.Size
		var inForce *VerifiedCovenant
		for _, vc := range vb.Covenants {
			if vc.Index < wcp.Size {
				inForce = vc
			}
		}
		wc := (&bundleCheck{}).checkWitnesses(wcp, inForce, extra)
		if wc == nil {
			c.fail("witnessed", i, 0, false, "witnesses", ErrWitnesses, "the checkpoint of size %d misses the witness quorum of the covenant in force at it", wcp.Size)
			return nil
		}
		proof := make([][]byte, len(w.ConsistencyProof))
		for j, h := range w.ConsistencyProof {
			proof[j] = h
		}
		if err := VerifyConsistency(wcp.Size, cp.Size, wcp.Hash, cp.Hash, proof); err != nil {
			c.fail("witnessed", i, 0, false, "consistency", ErrWitnesses, "the checkpoint of size %d is not consistent with the bundle's: %v", wcp.Size, err)
			return nil
		}
		bounds = append(bounds, bound{wcp.Size, wc.LatestAt})
	}
	bounds = append(bounds, bound{cp.Size, vb.Witnesses.LatestAt})
	return func(index uint64) time.Time {
		i, _ := slices.BinarySearchFunc(bounds, index+1, func(b bound, n uint64) int { return cmp.Compare(b.size, n) })
		if i == len(bounds) {
			i--
		}
		return bounds[i].at
	}
}

// ErrWitnesses means the bundle's checkpoint does not meet the witness
// policy of the covenant in force at it (or the verifier's own policy): a
// checkpoint only the operator vouches for, where witnesses are required.
var ErrWitnesses = errors.New("verifier: the checkpoint misses the witness quorum")

// checkWitnesses checks cp against the witness policy of the covenant
// version in force at it (the newest in the bundle: a bundle carries every
// version logged before its checkpoint) and against extra, the verifier's
// own, if given.
func (c *bundleCheck) checkWitnesses(cp *Checkpoint, inForce *VerifiedCovenant, extra *events.WitnessPolicy) *WitnessCheck {
	var policies []*events.WitnessPolicy
	if text := inForce.Signed.Covenant.WitnessPolicy; text != "" {
		p, err := events.ParseWitnessPolicy(text)
		if err != nil {
			c.failCause("checkpoint", "witnesses", ErrWitnesses, err)
			return nil
		}
		policies = append(policies, p)
	}
	if extra != nil {
		policies = append(policies, extra)
	}
	if len(policies) == 0 {
		return nil
	}
	wc := &WitnessCheck{}
	for _, p := range policies {
		res, err := CheckWitnessPolicy(cp, p)
		if err != nil {
			c.failCause("checkpoint", "witnesses", ErrWitnesses, err)
			return nil
		}
		for _, cs := range res.Cosigned {
			if !slices.ContainsFunc(wc.Cosigned, func(o WitnessCosignature) bool { return o.Witness == cs.Witness && o.Time.Equal(cs.Time) }) {
				wc.Cosigned = append(wc.Cosigned, cs)
			}
			if cs.Time.After(wc.LatestAt) {
				wc.LatestAt = cs.Time
			}
		}
	}
	return wc
}

// Covenant returns the newest covenant version of the bundle.
func (vb *VerifiedBundle) Covenant() *events.Covenant {
	return vb.Covenants[len(vb.Covenants)-1].Signed.Covenant
}

// VerifiedCovenant is a covenant version that verified.
type VerifiedCovenant struct {
	Index        uint64
	IntegratedAt time.Time
	Signed       *events.SignedCovenant
}

// VerifiedDisclosure is a disclosure that verified: its envelope opened under
// the covenant version its leaf names, its leaf matched and is in the log.
type VerifiedDisclosure struct {
	// Index is the leaf index.
	Index uint64
	// IntegratedAt is when the ledger recorded it: the ledger's own signed
	// statement, committed in the leaf record.
	IntegratedAt time.Time
	// Disclosure is the opened payload.
	Disclosure *events.Disclosure
	// Covenant is the covenant version it was checked against, whose
	// labels and party names the report uses; CovenantIndex is its leaf.
	Covenant      *events.Covenant
	CovenantIndex uint64
	// Findings are the covenant rules it breaks, recomputed here from the
	// verified payload, covenant and integrated_at.
	Findings []events.Finding
	// WitnessedBy is, under a witness policy, the latest cosignature time
	// of the first witnessed checkpoint in the bundle that includes it:
	// it was logged by then at the latest. Zero without a policy.
	WitnessedBy time.Time
}

// VerifiedWithheld is a withheld entry whose leaf and proof verified.
type VerifiedWithheld struct {
	Index        uint64
	IntegratedAt time.Time
	Ground       string
}

// VerifiedErasure is a tombstone whose leaf and proof verified.
type VerifiedErasure struct {
	// Index is the tombstone's leaf, ErasedIndex the erased disclosure's.
	Index       uint64
	ErasedIndex uint64
	RuleID      string
	// ErasedAt is the tombstone's integrated_at.
	ErasedAt time.Time
	// CovenantIndex is the leaf of the covenant version the tombstone was
	// checked against (its notice period applies).
	CovenantIndex uint64
}

// bundleCheck collects the problems of one verification.
type bundleCheck struct {
	errs BundleErrors
}

func (c *bundleCheck) fail(section string, item int, leaf uint64, hasLeaf bool, check string, sentinel error, format string, args ...any) {
	c.errs = append(c.errs, &BundleError{Section: section, Item: item, Leaf: leaf, HasLeaf: hasLeaf, Check: check,
		Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))})
}

// failErr records a failure at a leaf that wraps both a sentinel and a
// cause.
func (c *bundleCheck) failErr(section string, item int, leaf uint64, check string, sentinel, cause error) {
	c.errs = append(c.errs, &BundleError{Section: section, Item: item, Leaf: leaf, HasLeaf: true, Check: check,
		Err: fmt.Errorf("%w: %w", sentinel, cause)})
}

// failCause records a failure not tied to a leaf, wrapping a sentinel and a
// cause.
func (c *bundleCheck) failCause(section, check string, sentinel, cause error) {
	c.errs = append(c.errs, &BundleError{Section: section, Item: -1, Check: check, Err: fmt.Errorf("%w: %w", sentinel, cause)})
}

// leaf parses a leaf record, checks its type and its inclusion in cp (when
// the checkpoint verified), and returns it, or nil after recording why not.
func (c *bundleCheck) leaf(section string, item int, index uint64, recBytes []byte, proof []Base64Bytes,
	want EntryType, cp *Checkpoint) *LeafRecord {
	rec, err := ParseLeafRecord(recBytes)
	if err != nil {
		c.failErr(section, item, index, "leaf-record", ErrLeafMismatch, err)
		return nil
	}
	if rec.Type != want {
		c.fail(section, item, index, true, "leaf-record", ErrLeafMismatch, "the leaf is a %s entry, not a %s", rec.Type, want)
		return nil
	}
	if cp != nil {
		if index >= cp.Size {
			c.fail(section, item, index, true, "inclusion", ErrInclusion, "leaf %d is beyond the checkpoint's tree of size %d", index, cp.Size)
			return nil
		}
		hashes := make([][]byte, len(proof))
		for i := range proof {
			hashes[i] = proof[i]
		}
		if err := VerifyInclusion(index, cp.Size, LeafHash(recBytes), hashes, cp.Hash); err != nil {
			// The merkle package's message dumps both roots as byte
			// lists; a person needs to know which leaf failed.
			c.failErr(section, item, index, "inclusion", ErrInclusion,
				fmt.Errorf("%w: the leaf record and its proof do not lead to the root of the checkpoint's tree of size %d", ErrProof, cp.Size))
			return nil
		}
	}
	return rec
}

// VerifyBundle checks a bundle offline against the pinned log and cosigner
// keys and the pinned administrator key (a signed-note verifier key), and
// returns what verified. It checks:
//
//   - the bundle's structure and limits (ParseBundle), and that the keys it
//     names are the pinned ones;
//   - the checkpoint's log signature and cosignature with the pinned keys;
//   - the covenant chain: version 1 at leaf 0, naming and signed by the
//     pinned administrator key; each next version signed by the previous
//     version's administrator key and following it (events.NewChain and
//     Append); each version's leaf record naming the version before it;
//   - for every covenant version, disclosure, withheld entry and tombstone:
//     the leaf record's type, the body hash (SHA-256 of the envelope or
//     body), the tombstone fields, and the inclusion proof against the
//     checkpoint;
//   - every disclosure envelope opened with events.Open under the covenant
//     version its leaf record names (the discloser's key in force at
//     occurred_at and not revoked; origin = the checkpoint's origin), that
//     version being the newest one logged before the disclosure;
//   - every disclosure's subject is one of the bundle's pseudonyms;
//   - integrated_at never goes back along the log.
//
// It returns every problem found as BundleErrors (each wrapping a sentinel
// of its class), or ErrPinnedKeys when a pinned key is missing. The
// options change none of these checks but the one SignaturesCheckedAtIngest
// names.
func VerifyBundle(data []byte, keys *LogKeys, adminVkey string, opts ...VerifyOption) (*VerifiedBundle, error) {
	adminVkey, err := checkPinnedKeys(keys, adminVkey)
	if err != nil {
		return nil, err
	}
	b, err := ParseBundle(data)
	if err != nil {
		return nil, err
	}
	return verifyBundle(b, keys, adminVkey, opts)
}

// VerifyParsedBundle is VerifyBundle for a bundle held in memory, checked
// with CheckBundle instead of decoded with ParseBundle: the ledger checks a
// bundle it has built with it before it marshals and hands it out, so that
// the builder and a parent's verifier are the same code.
func VerifyParsedBundle(b *Bundle, keys *LogKeys, adminVkey string, opts ...VerifyOption) (*VerifiedBundle, error) {
	adminVkey, err := checkPinnedKeys(keys, adminVkey)
	if err != nil {
		return nil, err
	}
	if err := CheckBundle(b); err != nil {
		return nil, err
	}
	return verifyBundle(b, keys, adminVkey, opts)
}

// A VerifyOption changes how VerifyBundle and VerifyParsedBundle go about
// their checks.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	cache    *BundleCache
	ingested []IngestedEnvelope
	policy   *events.WitnessPolicy
}

// WithPolicy makes the verification require, besides the witness policy of
// the covenant in force at the bundle's checkpoint (if it has one), that
// policy's quorum too: a verifier's own policy may only make it stricter.
func WithPolicy(p *events.WitnessPolicy) VerifyOption {
	return func(o *verifyOptions) { o.policy = p }
}

// WithCache lets the verification reuse, and add to, what c remembers of
// bundles verified before (see BundleCache): the same verdicts, faster.
func WithCache(c *BundleCache) VerifyOption {
	return func(o *verifyOptions) { o.cache = c }
}

// IngestedEnvelope is one of a bundle's disclosure envelopes as the ledger
// holds it: parsed with events.ParseEnvelope and decoded with
// events.DecodeDisclosure from the very bytes the bundle carries, whose
// signature it verified when it logged them.
type IngestedEnvelope struct {
	// Index is the envelope's leaf.
	Index      uint64
	Envelope   *events.Envelope
	Disclosure *events.Disclosure
}

// SignaturesCheckedAtIngest is for the ledger checking a bundle it has just
// built from its own store, never for a bundle that came from elsewhere.
// entries[i] is the bundle's Entries[i] as the ledger parsed it. Each
// disclosure is then checked from entries[i] with events.CheckUnsigned
// instead of events.Open: every check of Open but the discloser's Ed25519
// signature, which the ledger verified at ingest. That the leaf record's
// body hash is SHA-256 of the envelope, and the leaf record is proven to be
// in the signed checkpoint's tree, binds the bytes to that check; a
// parent's verifier recomputes the signature anyway.
func SignaturesCheckedAtIngest(entries []IngestedEnvelope) VerifyOption {
	return func(o *verifyOptions) { o.ingested = entries }
}

// checkPinnedKeys refuses to verify without the pinned keys, and returns
// the administrator key trimmed.
func checkPinnedKeys(keys *LogKeys, adminVkey string) (string, error) {
	if keys == nil || keys.Log == nil || keys.Cosigner == nil || strings.TrimSpace(adminVkey) == "" {
		return "", ErrPinnedKeys
	}
	adminVkey = strings.TrimSpace(adminVkey)
	if _, err := events.AdminPublicKey(adminVkey); err != nil {
		return "", fmt.Errorf("%w: the administrator key %w", ErrPinnedKeys, err)
	}
	return adminVkey, nil
}

// verifyBundle makes VerifyBundle's checks on b, whose structure has been
// checked.
func verifyBundle(b *Bundle, keys *LogKeys, adminVkey string, opts []VerifyOption) (*VerifiedBundle, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.ingested != nil {
		if len(o.ingested) != len(b.Entries) {
			return nil, fmt.Errorf("verifier: %d ingested envelopes for the bundle's %d entries", len(o.ingested), len(b.Entries))
		}
		for i, in := range o.ingested {
			if in.Index != b.Entries[i].Index || in.Envelope == nil || in.Disclosure == nil {
				return nil, fmt.Errorf("verifier: entries[%d]: leaf %d in the bundle, ingested envelope of leaf %d", i, b.Entries[i].Index, in.Index)
			}
		}
	}
	c := &bundleCheck{}
	vb := &VerifiedBundle{
		Bundle:      b,
		LogKey:      NoteKeyFingerprint(keys.Log),
		CosignerKey: NoteKeyFingerprint(keys.Cosigner),
		AdminKey:    KeyFingerprint(adminVkey),
	}

	// The keys the bundle names are informational; they must agree with
	// the pinned ones, or the bundle was made for another log.
	c.checkNamedKeys(b, keys)

	cp, err := o.cache.openCheckpoint([]byte(b.Checkpoint), keys)
	if err != nil {
		c.failCause("checkpoint", "signature", ErrCheckpoint, err)
		cp = nil
	} else if cp.Origin != b.Origin {
		c.fail("checkpoint", -1, 0, false, "origin", ErrCheckpoint, "the bundle says origin %q, its checkpoint %q", clip(b.Origin), cp.Origin)
	}
	vb.Checkpoint = cp
	origin := keys.Log.Name()

	// The covenant chain, from version 1 on.
	covByIndex := map[uint64]*VerifiedCovenant{}
	var steps covenantSteps
	var key [32]byte
	if o.cache != nil {
		key = chainKey(b.Covenants, origin, adminVkey)
		steps.replay = o.cache.chain(key)
	}
	for i, e := range b.Covenants {
		rec := c.leaf("covenants", i, e.Index, e.LeafRecord, e.InclusionProof, EntryCovenant, cp)
		if rec == nil {
			break
		}
		if rec.BodyHash != sha256.Sum256(e.Envelope) {
			c.fail("covenants", i, e.Index, true, "body-hash", ErrLeafMismatch, "the leaf record's body hash is not SHA-256 of the signed covenant")
			break
		}
		sc, err := steps.parse(i, e.Envelope)
		if err != nil {
			c.failErr("covenants", i, e.Index, "covenant", ErrCovenant, err)
			break
		}
		if i == 0 {
			switch {
			case e.Index != 0 || rec.CovenantIndex != 0:
				c.fail("covenants", i, e.Index, true, "chain", ErrCovenant, "covenant version 1 must be leaf 0 and name itself")
			case sc.Covenant.Origin != origin:
				c.fail("covenants", i, e.Index, true, "chain", ErrCovenant, "covenant version 1 is for origin %q, the pinned log is %q", sc.Covenant.Origin, origin)
			default:
				if err := steps.first(sc, adminVkey); err != nil {
					c.failErr("covenants", i, e.Index, "administrator", ErrCovenant,
						fmt.Errorf("checked with the pinned administrator key %s: %w", KeyFingerprint(adminVkey), err))
				}
			}
		} else {
			prev := b.Covenants[i-1].Index
			if rec.CovenantIndex != prev {
				c.fail("covenants", i, e.Index, true, "chain", ErrCovenant, "the leaf record names covenant leaf %d, not the previous version at leaf %d", rec.CovenantIndex, prev)
			} else if err := steps.next(sc); err != nil {
				c.failErr("covenants", i, e.Index, "chain", ErrCovenant, err)
			}
		}
		if steps.n != i+1 {
			break
		}
		vc := &VerifiedCovenant{Index: e.Index, IntegratedAt: rec.IntegratedAt, Signed: steps.latest()}
		vb.Covenants = append(vb.Covenants, vc)
		covByIndex[e.Index] = vc
	}
	if len(vb.Covenants) < len(b.Covenants) {
		first := len(vb.Covenants)
		if n := len(b.Covenants) - first - 1; n > 0 {
			c.fail("covenants", -1, 0, false, "chain", ErrCovenant, "%d later covenant version(s) not checked: the chain broke at covenants[%d]", n, first)
		}
	} else if o.cache != nil && steps.replay == nil && len(b.Covenants) > 0 {
		versions := make([]*events.SignedCovenant, len(vb.Covenants))
		for i, vc := range vb.Covenants {
			versions[i] = vc.Signed
		}
		o.cache.addChain(key, versions)
	}
	covIndices := make([]uint64, len(vb.Covenants))
	for i, vc := range vb.Covenants {
		covIndices[i] = vc.Index
	}
	var witnessedBy func(index uint64) time.Time
	if cp != nil && len(vb.Covenants) == len(b.Covenants) && len(vb.Covenants) > 0 {
		vb.Witnesses = c.checkWitnesses(cp, vb.Covenants[len(vb.Covenants)-1], o.policy)
		inForce := vb.Covenants[len(vb.Covenants)-1]
		if vb.Witnesses != nil || (inForce.Signed.Covenant.WitnessPolicy == "" && o.policy == nil) {
			witnessedBy = c.checkWitnessed(b, cp, vb, keys, o.policy)
		}
	}

	inBundle := map[uint64]bool{}
	for _, e := range b.Covenants {
		inBundle[e.Index] = true
	}

	subjects := map[SubjectPseudonym]bool{}
	for _, p := range b.Subject.Pseudonyms {
		subjects[p] = true
	}

	// Each disclosure is checked on its own, on every core (opening an
	// envelope is a signature check); the problems are then taken in the
	// bundle's order.
	type entryResult struct {
		check     bundleCheck
		vd        *VerifiedDisclosure
		unchecked bool
	}
	results := make([]entryResult, len(b.Entries))
	checkEntry := func(i int) {
		e, r := b.Entries[i], &results[i]
		c := &r.check
		rec := c.leaf("entries", i, e.Index, e.LeafRecord, e.InclusionProof, EntryDisclosure, cp)
		if rec == nil {
			return
		}
		if rec.BodyHash != sha256.Sum256(e.Envelope) {
			c.fail("entries", i, e.Index, true, "body-hash", ErrLeafMismatch, "the leaf record's body hash is not SHA-256 of the envelope")
			return
		}
		vc, ok := covByIndex[rec.CovenantIndex]
		if !ok && inBundle[rec.CovenantIndex] {
			// Its covenant version failed and said so already; one line
			// for all the entries that depend on it is enough.
			r.unchecked = true
			return
		}
		if !ok {
			c.fail("entries", i, e.Index, true, "covenant", ErrCovenant, "the leaf names covenant leaf %d, which is not a verified covenant version of this bundle", rec.CovenantIndex)
			return
		}
		if rec.CovenantIndex >= e.Index {
			c.fail("entries", i, e.Index, true, "covenant", ErrCovenant, "the leaf names covenant leaf %d, which is not before it", rec.CovenantIndex)
			return
		}
		// The version in force is the newest one logged before the entry:
		// naming an older one would dodge a revocation.
		if j, _ := slices.BinarySearch(covIndices, e.Index); j > 0 && covIndices[j-1] != rec.CovenantIndex {
			newer := covByIndex[covIndices[j-1]]
			c.fail("entries", i, e.Index, true, "covenant", ErrCovenant, "checked against covenant version %d, but version %d was logged before it (leaf %d)",
				vc.Signed.Covenant.Version, newer.Signed.Covenant.Version, newer.Index)
			return
		}
		var d *events.Disclosure
		var err error
		if o.ingested != nil {
			d = o.ingested[i].Disclosure
			err = events.CheckUnsigned(o.ingested[i].Envelope, d, origin, vc.Signed.Covenant)
		} else {
			d, _, err = events.Open(e.Envelope, origin, vc.Signed.Covenant)
		}
		if err != nil {
			c.failErr("entries", i, e.Index, "signature", ErrSignature, err)
			return
		}
		subj := SubjectPseudonym{KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym}
		if d.Subject.IDType != b.Subject.IDType || !subjects[subj] {
			c.fail("entries", i, e.Index, true, "subject", ErrOtherSubject, "the disclosure is about another data subject than this bundle's")
			return
		}
		findings := append(vc.Signed.Covenant.Check(d), vc.Signed.Covenant.CheckRecording(d, rec.IntegratedAt)...)
		r.vd = &VerifiedDisclosure{Index: e.Index, IntegratedAt: rec.IntegratedAt,
			Disclosure: d, Covenant: vc.Signed.Covenant, CovenantIndex: vc.Index, Findings: findings}
	}
	parallel.For(len(b.Entries), 0, 8, checkEntry)
	unchecked := 0
	for i := range results {
		r := &results[i]
		c.errs = append(c.errs, r.check.errs...)
		if r.unchecked {
			unchecked++
		}
		if r.vd != nil {
			if witnessedBy != nil {
				r.vd.WitnessedBy = witnessedBy(r.vd.Index)
			}
			vb.Disclosures = append(vb.Disclosures, r.vd)
		}
	}

	if unchecked > 0 {
		c.fail("entries", -1, 0, false, "covenant", ErrCovenant, "%d disclosure(s) not checked: the covenant version they were checked against did not verify", unchecked)
	}

	for i, e := range b.Withheld {
		rec := c.leaf("withheld", i, e.Index, e.LeafRecord, e.InclusionProof, EntryDisclosure, cp)
		if rec == nil {
			continue
		}
		vb.Withheld = append(vb.Withheld, &VerifiedWithheld{Index: e.Index, IntegratedAt: rec.IntegratedAt, Ground: e.Ground})
	}

	for i, e := range b.Erased {
		rec := c.leaf("erased", i, e.Index, e.LeafRecord, e.InclusionProof, EntryTombstone, cp)
		if rec == nil {
			continue
		}
		switch {
		case rec.ErasedIndex != e.ErasedIndex || rec.RuleID != e.RuleID || !rec.IntegratedAt.Equal(e.ErasedAt):
			c.fail("erased", i, e.Index, true, "leaf-record", ErrLeafMismatch, "erased_index, rule_id or erased_at differ from what the leaf record commits to")
			continue
		case rec.ErasedIndex >= e.Index:
			c.fail("erased", i, e.Index, true, "leaf-record", ErrLeafMismatch, "the tombstone erases leaf %d, which is not before it", rec.ErasedIndex)
			continue
		case e.Body != nil && rec.BodyHash != sha256.Sum256(e.Body):
			c.fail("erased", i, e.Index, true, "body-hash", ErrLeafMismatch, "the leaf record's body hash is not SHA-256 of the tombstone body")
			continue
		}
		vb.Erased = append(vb.Erased, &VerifiedErasure{Index: e.Index, ErasedIndex: rec.ErasedIndex, RuleID: rec.RuleID, ErasedAt: rec.IntegratedAt,
			CovenantIndex: rec.CovenantIndex})
	}

	c.checkTimes(b)
	if b.Answer != nil {
		vb.Answer = c.checkAnswer(b, cp)
		if vb.Answer != nil {
			c.checkYoungPerson(b, vb)
		}
	}
	if b.Index != nil {
		vb.Completeness = c.checkIndex(b, vb, cp)
	}

	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return vb, nil
}

// VerifiedAnswer is a v2 bundle's answer entry, with every piece of the
// bundle's metadata checked against it.
type VerifiedAnswer struct {
	// Index is the answer entry's leaf; IntegratedAt when it was logged.
	Index        uint64
	IntegratedAt time.Time
	// RequestedBy and ReleasedBy are the desk users' pseudonymous ids
	// (DeskUserID).
	RequestedBy, ReleasedBy string
	// TreeSize is the tree size the answer was made at.
	TreeSize uint64
	// YoungPerson is the decision recorded for a parent or guardian
	// asking about a young person of 16 or over; nil when none was needed.
	// Each of its leaves that the bundle shows was checked to have age
	// band 16-plus.
	YoungPerson *AnswerYoungPerson
}

// checkAnswer checks a v2 bundle's answer entry: its leaf in cp, its body
// against the leaf record, and every piece of the bundle's metadata (the
// request, the creation time, the scope, the subject, and the exact lists
// of included, withheld with their grounds, and erased leaves) against
// the body. Any difference is refused (ErrAnswer).
func (c *bundleCheck) checkAnswer(b *Bundle, cp *Checkpoint) *VerifiedAnswer {
	e := b.Answer
	rec := c.leaf("answer", -1, e.Index, e.LeafRecord, e.InclusionProof, EntryAnswer, cp)
	if rec == nil {
		return nil
	}
	if rec.BodyHash != sha256.Sum256(e.Body) {
		c.fail("answer", -1, e.Index, true, "body-hash", ErrLeafMismatch, "the leaf record's body hash is not SHA-256 of the answer body")
		return nil
	}
	a, err := ParseAnswerBody(e.Body)
	if err != nil {
		c.failErr("answer", -1, e.Index, "answer", ErrAnswer, err)
		return nil
	}
	differs := func(what string) {
		c.fail("answer", -1, e.Index, true, "metadata", ErrAnswer, "the bundle's %s differs from what its answer entry says", what)
	}
	if a.Origin != b.Origin {
		differs("origin")
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		differs("creation time")
	}
	if a.Request.ID != b.Request.ID || a.Request.Relation != b.Request.Relation {
		differs("request id or relation")
	}
	if !a.Request.RequestedAt.Equal(b.Request.RequestedAt) || !a.Request.ReleasedAt.Equal(b.Request.ReleasedAt) {
		differs("registered or released time")
	}
	if a.Scope.CentralDesk != b.Scope.CentralDesk || !slices.Equal(a.Scope.Parties, b.Scope.Parties) {
		differs("scope")
	}
	if a.Subject.IDType != b.Subject.IDType || !slices.Equal(a.Subject.Pseudonyms, b.Subject.Pseudonyms) {
		differs("subject")
	}
	included := make([]uint64, len(b.Entries))
	for i, x := range b.Entries {
		included[i] = x.Index
	}
	if !slices.Equal(a.Included, included) {
		differs("list of included disclosures")
	}
	withheld := make([]AnswerWithheld, len(b.Withheld))
	for i, x := range b.Withheld {
		withheld[i] = AnswerWithheld{Index: x.Index, Ground: x.Ground}
	}
	if !slices.Equal(a.Withheld, withheld) {
		differs("list of withheld disclosures or their grounds")
	}
	erased := make([]uint64, len(b.Erased))
	for i, x := range b.Erased {
		erased[i] = x.Index
	}
	if !slices.Equal(a.Erased, erased) {
		differs("list of erased disclosures")
	}
	if a.TreeSize > e.Index {
		c.fail("answer", -1, e.Index, true, "metadata", ErrAnswer, "the answer says it was made at tree size %d, after its own leaf %d", a.TreeSize, e.Index)
	}
	return &VerifiedAnswer{Index: e.Index, IntegratedAt: rec.IntegratedAt, RequestedBy: a.RequestedBy, ReleasedBy: a.ReleasedBy, TreeSize: a.TreeSize,
		YoungPerson: a.YoungPerson}
}

// checkYoungPerson checks a v2 answer to a parent or guardian against the
// age bands of the disclosures it shows: every one of age band 16-plus is
// among the leaves of the recorded young-person decision (without one, the
// answer should not have gone to a parent: the ledger refuses such a
// release), and every leaf the decision lists that the bundle shows has
// that band.
func (c *bundleCheck) checkYoungPerson(b *Bundle, vb *VerifiedBundle) {
	if b.Request.Relation != RelationParent && b.Request.Relation != RelationGuardian {
		return
	}
	listed := map[uint64]bool{}
	if y := vb.Answer.YoungPerson; y != nil {
		for _, n := range y.Leaves {
			listed[n] = true
		}
	}
	for _, d := range vb.Disclosures {
		sixteen := d.Disclosure.SubjectAgeBand == events.Age16Plus
		switch {
		case sixteen && !listed[d.Index]:
			c.fail("answer", -1, vb.Answer.Index, true, "young-person", ErrAnswer,
				"disclosure %d is about a young person of 16 or over, and the answer to a %s records no consent of the young person", d.Index, b.Request.Relation)
		case !sixteen && listed[d.Index]:
			c.fail("answer", -1, vb.Answer.Index, true, "young-person", ErrAnswer,
				"the answer lists disclosure %d as of age band 16-plus, but its age band is %s", d.Index, d.Disclosure.SubjectAgeBand)
		}
	}
}

// checkNamedKeys compares the keys the bundle names with the pinned ones.
func (c *bundleCheck) checkNamedKeys(b *Bundle, keys *LogKeys) {
	named, err := ParseLogKeys(b.LogVkey, b.CosignerVkey)
	if err != nil {
		c.failCause("keys", "keys", ErrBundleKeys, err)
		return
	}
	if NoteKeyFingerprint(named.Log) != NoteKeyFingerprint(keys.Log) {
		c.fail("keys", -1, 0, false, "log-key", ErrBundleKeys, "the bundle names log key %s, the pinned key is %s",
			NoteKeyFingerprint(named.Log), NoteKeyFingerprint(keys.Log))
	}
	if NoteKeyFingerprint(named.Cosigner) != NoteKeyFingerprint(keys.Cosigner) {
		c.fail("keys", -1, 0, false, "cosigner-key", ErrBundleKeys, "the bundle names cosigner key %s, the pinned key is %s",
			NoteKeyFingerprint(named.Cosigner), NoteKeyFingerprint(keys.Cosigner))
	}
}

// checkTimes checks that integrated_at never goes back along the log: the
// ledger keeps it monotonic, so a record that does was not made by it.
func (c *bundleCheck) checkTimes(b *Bundle) {
	type stamp struct {
		section string
		item    int
		index   uint64
		at      time.Time
	}
	stamps := make([]stamp, 0, len(b.Covenants)+len(b.Entries)+len(b.Withheld)+len(b.Erased))
	add := func(section string, i int, index uint64, recBytes []byte) {
		var rec LeafRecord
		if rec.UnmarshalBinary(recBytes) == nil {
			stamps = append(stamps, stamp{section, i, index, rec.IntegratedAt})
		}
	}
	for i, e := range b.Covenants {
		add("covenants", i, e.Index, e.LeafRecord)
	}
	for i, e := range b.Entries {
		add("entries", i, e.Index, e.LeafRecord)
	}
	for i, e := range b.Withheld {
		add("withheld", i, e.Index, e.LeafRecord)
	}
	for i, e := range b.Erased {
		add("erased", i, e.Index, e.LeafRecord)
	}
	slices.SortFunc(stamps, func(x, y stamp) int { return cmp.Compare(x.index, y.index) })
	for i := 1; i < len(stamps); i++ {
		if p, s := stamps[i-1], stamps[i]; s.at.Before(p.at) {
			c.fail(s.section, s.item, s.index, true, "integrated-at", ErrLeafMismatch, "recorded at %s, before leaf %d (%s): the ledger's time never goes back",
				s.at.Format(time.RFC3339Nano), p.index, p.at.Format(time.RFC3339Nano))
		}
	}
}
