package webhook

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Why no library: RFC 9421 needs Structured Fields and a signature base
// built byte for byte; the one well-kept Go library (yaronf/httpsign) is
// not available to this project's build, and the others found are drafts
// of the older cavage scheme. What is used is small (one algorithm, a
// handful of components, no component parameters), so it is written here,
// strictly, and checked against the RFC's own Ed25519 example (Appendix
// B.2.6) in the tests.

// Label is the signature label Spoor's ledger uses in Signature-Input and
// Signature.
const Label = "spoor"

// SignedComponents are the components the ledger covers, in this order; a
// receiver's Verify requires at least these by default.
var SignedComponents = []string{"@method", "@target-uri", "content-digest", "content-type"}

// DefaultMaxAge is how old a signature's created time may be by default
// when verifying: a delivery retried for longer is signed anew on each
// attempt, so a stale signature is a replay.
const DefaultMaxAge = 5 * time.Minute

// clockSkew is how far in the future created may lie.
const clockSkew = time.Minute

// ErrSignature is wrapped by every error Verify returns for a request that
// does not carry a valid signature, so that a receiver can answer 401.
var ErrSignature = errors.New("webhook: no valid signature")

// KeyID is the keyid the ledger puts in its signatures for a notification
// key: "spoor-notify-" and the first 16 hex digits of the key's SHA-256. It
// names the key, it is not trusted: Verify looks the key up by it.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "spoor-notify-" + hex.EncodeToString(sum[:8])
}

// ContentDigest returns the Content-Digest field value (RFC 9530) of body
// with the sha-256 algorithm.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + b64(sum[:]) + ":"
}

// Sign adds Content-Digest, Signature-Input and Signature (label Label) to
// req, whose body is body exactly as it will be sent. It covers
// SignedComponents with the parameters created and keyid (and alg), so
// req must have Content-Type set and an absolute URL.
func Sign(req *http.Request, body []byte, key ed25519.PrivateKey, keyID string, created time.Time) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("webhook: signing key is not an Ed25519 private key")
	}
	if !req.URL.IsAbs() {
		return errors.New("webhook: a signed request needs an absolute URL")
	}
	if keyID == "" || !printable(keyID) {
		return errors.New("webhook: keyid must be printable ASCII")
	}
	req.Header.Set("Content-Digest", ContentDigest(body))
	sp := &signatureParams{components: SignedComponents, params: []param{
		{"created", created.Unix()}, {"keyid", keyID}, {"alg", "ed25519"},
	}}
	base, err := signatureBase(req, sp, "")
	if err != nil {
		return err
	}
	sig := ed25519.Sign(key, []byte(base))
	req.Header.Set("Signature-Input", Label+"="+sp.serialize())
	req.Header.Set("Signature", Label+"=:"+b64(sig)+":")
	return nil
}

// VerifyOptions says what Verify accepts.
type VerifyOptions struct {
	// Keys are the trusted public keys by keyid (KeyID of the key the
	// covenant lists). Required.
	Keys map[string]ed25519.PublicKey
	// Label is the signature to check; "" means the only one the request
	// carries.
	Label string
	// Required are the components the signature must cover; nil means
	// SignedComponents.
	Required []string
	// MaxAge bounds the age of created; 0 means DefaultMaxAge, negative
	// means no bound (for test vectors).
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TargetURI, if set, is the absolute URI the sender addressed (what a
	// receiver behind a TLS-terminating proxy configures); otherwise it
	// is rebuilt from the request (https when it came over TLS).
	TargetURI string
}

// Verified describes a signature Verify accepted.
type Verified struct {
	Label      string
	KeyID      string
	Created    time.Time
	Components []string
}

// Verify checks the HTTP Message Signature of r, whose body is body (read
// in full by the caller): the covered components include opts.Required,
// every parameter is known, the key is one of opts.Keys, the Ed25519
// signature is valid over the signature base, created is fresh and, when
// a Content-Digest is present, it matches body. Every refusal wraps
// ErrSignature.
func Verify(r *http.Request, body []byte, opts VerifyOptions) (*Verified, error) {
	v, err := verify(r, body, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return v, nil
}

func verify(r *http.Request, body []byte, opts VerifyOptions) (*Verified, error) {
	inputs, err := parseSignatureInput(strings.Join(r.Header.Values("Signature-Input"), ", "))
	if err != nil {
		return nil, err
	}
	sigs, err := parseSignature(strings.Join(r.Header.Values("Signature"), ", "))
	if err != nil {
		return nil, err
	}
	label := opts.Label
	if label == "" {
		if len(inputs) != 1 {
			return nil, fmt.Errorf("the request carries %d signatures; name the label to check", len(inputs))
		}
		for l := range inputs {
			label = l
		}
	}
	sp, ok := inputs[label]
	if !ok {
		return nil, fmt.Errorf("no signature-input %q", label)
	}
	sig, ok := sigs[label]
	if !ok {
		return nil, fmt.Errorf("no signature %q", label)
	}
	v := &Verified{Label: label, Components: sp.components}
	var haveCreated bool
	var expires int64
	for _, p := range sp.params {
		switch p.key {
		case "created", "expires":
			n, ok := p.value.(int64)
			if !ok || n < 0 {
				return nil, fmt.Errorf("parameter %s is not a non-negative integer", p.key)
			}
			if p.key == "created" {
				v.Created, haveCreated = time.Unix(n, 0).UTC(), true
			} else {
				expires = n
			}
		case "keyid", "nonce", "tag", "alg":
			s, ok := p.value.(string)
			if !ok {
				return nil, fmt.Errorf("parameter %s is not a string", p.key)
			}
			if p.key == "keyid" {
				v.KeyID = s
			}
			if p.key == "alg" && s != "ed25519" {
				return nil, fmt.Errorf("alg %q: only ed25519 is accepted", s)
			}
		default:
			return nil, fmt.Errorf("unknown signature parameter %q", p.key)
		}
	}
	if !haveCreated {
		return nil, errors.New("the signature has no created parameter")
	}
	if v.KeyID == "" {
		return nil, errors.New("the signature has no keyid parameter")
	}
	key, ok := opts.Keys[v.KeyID]
	if !ok || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("keyid %q is not a trusted key", v.KeyID)
	}
	required := opts.Required
	if required == nil {
		required = SignedComponents
	}
	covered := map[string]bool{}
	for _, c := range sp.components {
		if covered[c] {
			return nil, fmt.Errorf("component %q covered twice", c)
		}
		covered[c] = true
	}
	for _, c := range required {
		if !covered[c] {
			return nil, fmt.Errorf("the signature does not cover %q", c)
		}
	}
	base, err := signatureBase(r, sp, opts.TargetURI)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(key, []byte(base), sig) {
		return nil, errors.New("the Ed25519 signature does not verify")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now()
	maxAge := opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	if v.Created.After(t.Add(clockSkew)) {
		return nil, fmt.Errorf("created %s lies in the future", v.Created.Format(time.RFC3339))
	}
	if maxAge > 0 && t.Sub(v.Created) > maxAge {
		return nil, fmt.Errorf("created %s is older than %s", v.Created.Format(time.RFC3339), maxAge)
	}
	if expires != 0 && t.Unix() >= expires {
		return nil, errors.New("the signature has expired")
	}
	// The digest is checked after the signature, so that a covered
	// Content-Digest is known to be the sender's; an uncovered one is
	// still checked, as a check of the transfer.
	if d := r.Header.Values("Content-Digest"); len(d) > 0 || covered["content-digest"] {
		if err := checkDigest(strings.Join(d, ", "), body); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// checkDigest checks a Content-Digest value against body: every sha-256
// and sha-512 member must match, other algorithms are ignored, and at
// least one of the two must be present.
func checkDigest(field string, body []byte) error {
	found := false
	err := parseDictionary(field, func(key string, p *sfParser) error {
		if p.peek() != ':' {
			return fmt.Errorf("content-digest %q is not a byte sequence", key)
		}
		got, err := p.byteSequence()
		if err != nil {
			return fmt.Errorf("content-digest %q: %w", key, err)
		}
		if _, err := p.parameters(); err != nil {
			return err
		}
		var want []byte
		switch key {
		case "sha-256":
			s := sha256.Sum256(body)
			want = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			want = s[:]
		default:
			return nil
		}
		found = true
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return fmt.Errorf("content-digest %s does not match the body", key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("content-digest: %w", err)
	}
	if !found {
		return errors.New("content-digest has neither sha-256 nor sha-512")
	}
	return nil
}

// signatureBase builds the signature base (RFC 9421 section 2.5) of r for
// sp. targetURI overrides the rebuilt @target-uri when set.
func signatureBase(r *http.Request, sp *signatureParams, targetURI string) (string, error) {
	var b strings.Builder
	for _, c := range sp.components {
		if c != strings.ToLower(c) || c == "" {
			return "", fmt.Errorf("component %q is not a lower-case name", c)
		}
		if c == "@signature-params" {
			return "", errors.New("@signature-params cannot be covered")
		}
		v, err := componentValue(r, c, targetURI)
		if err != nil {
			return "", err
		}
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("component %q holds a line break", c)
		}
		b.WriteString(quoteSF(c))
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(sp.serialize())
	return b.String(), nil
}

func componentValue(r *http.Request, c, targetURI string) (string, error) {
	if !strings.HasPrefix(c, "@") {
		vals := slices.Clone(r.Header.Values(c))
		if len(vals) == 0 {
			return "", fmt.Errorf("covered header field %q is missing", c)
		}
		for i := range vals {
			vals[i] = strings.Trim(vals[i], " \t")
		}
		return strings.Join(vals, ", "), nil
	}
	scheme, host := requestScheme(r), requestHost(r)
	switch c {
	case "@method":
		return r.Method, nil
	case "@target-uri":
		if targetURI != "" {
			return targetURI, nil
		}
		return scheme + "://" + host + r.URL.RequestURI(), nil
	case "@authority":
		return authority(scheme, host), nil
	case "@scheme":
		return scheme, nil
	case "@path":
		if p := r.URL.EscapedPath(); p != "" {
			return p, nil
		}
		return "/", nil
	case "@query":
		return "?" + r.URL.RawQuery, nil
	case "@request-target":
		return r.URL.RequestURI(), nil
	default:
		return "", fmt.Errorf("derived component %q is not supported", c)
	}
}

// requestScheme is the scheme of a client request's URL, or of a server
// request by whether it came over TLS.
func requestScheme(r *http.Request) string {
	if r.URL.Scheme != "" {
		return strings.ToLower(r.URL.Scheme)
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func requestHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// authority is host lower-cased, without the scheme's default port.
func authority(scheme, host string) string {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			if strings.Contains(h, ":") {
				return "[" + h + "]"
			}
			return h
		}
	}
	return host
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
