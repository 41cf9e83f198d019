package verifier

// The answer entry: an inzage answer on the record. When a privacy desk
// releases the answer to an access request, the ledger appends an entry of
// type EntryAnswer whose body says exactly what was answered: the request
// (its id, the relation of the requester, when it was registered and
// released, and when the bundle was made), the two desk users by
// pseudonymous id, the scope, the child's pseudonyms, the tree size it
// answers at, and the exact lists of included, withheld (each with its
// ground) and erased leaves. Its leaf record, like every other, holds only
// the body's hash; the body is readable by the FG, who sees every
// withholding, and a v2 bundle carries it, with its inclusion proof, so
// that every piece of the bundle's metadata is proven by the log rather
// than stated by whoever handed the bundle over.
//
// The body is canonical JSON in the field order below (encoding/json of
// AnswerBody); ParseAnswerBody accepts only that one form.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// AnswerFormat is the format of an answer entry's body.
const AnswerFormat = "spoor.inzage-answer/v1"

// ErrAnswer is wrapped by every error about an answer entry's body, and by
// a bundle whose metadata differs from its answer entry.
var ErrAnswer = errors.New("verifier: answer entry")

// AnswerBody is the body of an answer entry.
type AnswerBody struct {
	Format string `json:"format"`
	Origin string `json:"origin"`
	// CreatedAt is the bundle's creation time.
	CreatedAt time.Time     `json:"created_at"`
	Request   InzageRequest `json:"request"`
	// RequestedBy and ReleasedBy are the two desk users, by DeskUserID.
	RequestedBy string        `json:"requested_by"`
	ReleasedBy  string        `json:"released_by"`
	Scope       BundleScope   `json:"scope"`
	Subject     BundleSubject `json:"subject"`
	// TreeSize is the size of the tree the answer was made at: every leaf
	// it lists lies below it.
	TreeSize uint64 `json:"tree_size"`
	// Included, Withheld and Erased are the leaves the answer shows,
	// withholds (with the ground) and lists as erased (the tombstones'
	// leaves), each in increasing order.
	Included []uint64         `json:"included"`
	Withheld []AnswerWithheld `json:"withheld"`
	Erased   []uint64         `json:"erased"`
	// YoungPerson is what was decided for a parent or guardian asking
	// about a young person of 16 or over: absent when no disclosure in
	// scope has age band 16-plus (or the young person asked), so that a
	// body without it keeps the canonical form it had before the field.
	YoungPerson *AnswerYoungPerson `json:"young_person,omitempty"`
}

// AnswerYoungPerson records a release to a parent or guardian although
// disclosures in scope say the child is 16 or over (from 16 the young
// person alone exercises the right of access, AVG art. 8 / UAVG art. 5):
// allowed only because the second desk user recorded the young person's
// consent, by reference to where that consent is kept.
type AnswerYoungPerson struct {
	// Decision is YoungPersonConsented, the only decision that lets such
	// an answer out.
	Decision string `json:"decision"`
	// ConsentReference says where the consent is kept (a case or
	// document number of the organisation), never a BSN.
	ConsentReference string `json:"consent_reference"`
	// Leaves are the in-scope disclosures (included or withheld) whose
	// age band is 16-plus, in increasing order.
	Leaves []uint64 `json:"leaves"`
}

// YoungPersonConsented is AnswerYoungPerson.Decision when the young
// person consented to the answer going to the parent or guardian.
const YoungPersonConsented = "young-person-consented"

// MaxConsentReference bounds a consent reference.
const MaxConsentReference = 200

// CheckConsentReference reports why ref cannot be a consent reference: it
// must be 1 to MaxConsentReference printable characters, with no run of 8
// or more digits (it is logged and handed to the requester: a BSN or
// another number of the child has no place in it).
func CheckConsentReference(ref string) error {
	if len(ref) == 0 || len(ref) > MaxConsentReference {
		return fmt.Errorf("a consent reference is 1 to %d characters", MaxConsentReference)
	}
	digits := 0
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || !utf8.ValidRune(c) || c == utf8.RuneError {
			return errors.New("a consent reference is printable text")
		}
		if c >= '0' && c <= '9' {
			digits++
			if digits >= 8 {
				return errors.New("a consent reference holds no run of 8 or more digits (never a BSN or another number of the child)")
			}
		} else {
			digits = 0
		}
	}
	return nil
}

// AnswerWithheld is a withheld leaf and its legal ground.
type AnswerWithheld struct {
	Index  uint64 `json:"index"`
	Ground string `json:"ground"`
}

// DeskUserID is the pseudonymous id of a desk user in an answer entry: the
// first 16 hex characters of SHA-256 of a fixed label and the user's
// credential (the SHA-256 of their token, as the tokens file lists it), or
// their name where no credential was kept. The FG, who holds the list of
// desk users, can tell who it was; the log and a parent's bundle show no
// name.
func DeskUserID(credential string) string {
	h := sha256.Sum256([]byte("spoor desk user\x00" + credential))
	return hex.EncodeToString(h[:8])
}

// MarshalAnswerBody returns a's canonical bytes, after checking it.
func MarshalAnswerBody(a *AnswerBody) ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAnswer, err)
	}
	return b, nil
}

// ParseAnswerBody parses an answer entry's body, refusing anything but the
// one canonical form of a valid body.
func ParseAnswerBody(b []byte) (*AnswerBody, error) {
	if len(b) > MaxAnswerBodySize {
		return nil, fmt.Errorf("%w: body of %d bytes, at most %d", ErrAnswer, len(b), MaxAnswerBodySize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a AnswerBody
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAnswer, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrAnswer)
	}
	again, err := MarshalAnswerBody(&a)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrAnswer)
	}
	return &a, nil
}

// MaxAnswerBodySize bounds an answer body: MaxBundleEntries leaves and a
// withholding ground each fit well within it.
const MaxAnswerBodySize = 4 << 20

func (a *AnswerBody) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrAnswer}, args...)...)
	}
	switch {
	case a.Format != AnswerFormat:
		return bad("format is %q, want %q", clip(a.Format), AnswerFormat)
	case !validOrigin(a.Origin):
		return bad("origin is not a log origin")
	case a.CreatedAt.IsZero():
		return bad("created_at is missing")
	case len(a.RequestedBy) != 16 || len(a.ReleasedBy) != 16 || a.RequestedBy == a.ReleasedBy:
		return bad("requested_by and released_by must be two different desk user ids")
	case len(a.Included)+len(a.Withheld)+len(a.Erased) > MaxBundleEntries:
		return bad("%d leaves, at most %d", len(a.Included)+len(a.Withheld)+len(a.Erased), MaxBundleEntries)
	}
	if err := checkInzageRequest(&a.Request); err != nil {
		return bad("request: %s", err)
	}
	if err := checkBundleSubject(&a.Subject); err != nil {
		return bad("subject: %s", err)
	}
	if len(a.Scope.Parties) == 0 || len(a.Scope.Parties) > MaxBundleParties {
		return bad("scope lists %d parties", len(a.Scope.Parties))
	}
	for i, p := range a.Scope.Parties {
		if !bundlePartyIDRE.MatchString(p) || slices.Index(a.Scope.Parties, p) != i {
			return bad("scope.parties[%d] is not a party id or repeats one", i)
		}
	}
	if a.Included == nil || a.Withheld == nil || a.Erased == nil {
		return bad("included, withheld and erased must be lists (empty when nothing)")
	}
	seen := map[uint64]bool{}
	inOrder := func(name string, idx []uint64) error {
		for i, n := range idx {
			if (i > 0 && n <= idx[i-1]) || n >= a.TreeSize || seen[n] {
				return bad("%s: leaf %d is out of order, repeated, or not below tree_size %d", name, n, a.TreeSize)
			}
			seen[n] = true
		}
		return nil
	}
	if err := inOrder("included", a.Included); err != nil {
		return err
	}
	w := make([]uint64, len(a.Withheld))
	for i, e := range a.Withheld {
		if !ValidWithholdGround(e.Ground) {
			return bad("withheld[%d]: ground %q is not %s or %s", i, clip(e.Ground), WithholdAVG23, WithholdUAVG41)
		}
		w[i] = e.Index
	}
	if err := inOrder("withheld", w); err != nil {
		return err
	}
	if err := inOrder("erased", a.Erased); err != nil {
		return err
	}
	if y := a.YoungPerson; y != nil {
		if a.Request.Relation != RelationParent && a.Request.Relation != RelationGuardian {
			return bad("young_person: only an answer to a parent or guardian records a decision about a young person")
		}
		if y.Decision != YoungPersonConsented {
			return bad("young_person: decision is %q, want %q", clip(y.Decision), YoungPersonConsented)
		}
		if err := CheckConsentReference(y.ConsentReference); err != nil {
			return bad("young_person: %s", err)
		}
		if len(y.Leaves) == 0 {
			return bad("young_person: no leaves of age band 16-plus listed")
		}
		shown := map[uint64]bool{}
		for _, n := range a.Included {
			shown[n] = true
		}
		for _, e := range a.Withheld {
			shown[e.Index] = true
		}
		for i, n := range y.Leaves {
			if (i > 0 && n <= y.Leaves[i-1]) || !shown[n] {
				return bad("young_person: leaf %d is out of order, repeated, or neither included nor withheld", n)
			}
		}
	}
	return nil
}
