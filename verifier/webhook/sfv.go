package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file parses the two Structured Field (RFC 8941) dictionaries of RFC
// 9421, Signature-Input and Signature, as far as they are used: members
// whose value is an inner list of strings with parameters, or a byte
// sequence. Anything else (tokens as items, nested lists, decimals) is an
// error: a verifier that does not understand a field must not guess.

// maxFieldLen bounds a header field this package parses; a signature field
// of Spoor's is a few hundred bytes.
const maxFieldLen = 8 << 10

// param is one parameter of an inner list: its value is an int64, a string,
// a bool or a []byte.
type param struct {
	key   string
	value any
}

// signatureParams is one member of Signature-Input: the covered component
// identifiers and the parameters, in order.
type signatureParams struct {
	components []string
	params     []param
}

// serialize is the canonical serialization of the inner list (RFC 8941
// section 4.1.1.1), which is the value of @signature-params in the
// signature base.
func (sp *signatureParams) serialize() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, c := range sp.components {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(c))
	}
	b.WriteByte(')')
	for _, p := range sp.params {
		b.WriteByte(';')
		b.WriteString(p.key)
		switch v := p.value.(type) {
		case bool:
			if !v {
				b.WriteString("=?0")
			}
		case int64:
			b.WriteByte('=')
			b.WriteString(strconv.FormatInt(v, 10))
		case string:
			b.WriteByte('=')
			b.WriteString(quoteSF(v))
		case []byte:
			b.WriteString("=:" + base64.StdEncoding.EncodeToString(v) + ":")
		}
	}
	return b.String()
}

// quoteSF serializes an sf-string: only \" and \\ are escaped; the parser
// admits printable ASCII only, so nothing else needs escaping.
func quoteSF(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// parseSignatureInput parses a Signature-Input field value.
func parseSignatureInput(s string) (map[string]*signatureParams, error) {
	out := map[string]*signatureParams{}
	err := parseDictionary(s, func(key string, p *sfParser) error {
		if p.peek() != '(' {
			return fmt.Errorf("signature-input %q: not an inner list", key)
		}
		sp, err := p.innerList()
		if err != nil {
			return fmt.Errorf("signature-input %q: %w", key, err)
		}
		out[key] = sp
		return nil
	})
	return out, err
}

// parseSignature parses a Signature field value: each member a byte
// sequence, without parameters.
func parseSignature(s string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := parseDictionary(s, func(key string, p *sfParser) error {
		if p.peek() != ':' {
			return fmt.Errorf("signature %q: not a byte sequence", key)
		}
		b, err := p.byteSequence()
		if err != nil {
			return fmt.Errorf("signature %q: %w", key, err)
		}
		if p.peek() == ';' {
			return fmt.Errorf("signature %q: parameters on a signature are not used", key)
		}
		out[key] = b
		return nil
	})
	return out, err
}

// parseDictionary walks an sf-dictionary, calling member for each key with
// the parser positioned at its value. A key given twice is refused (RFC
// 8941 lets the last win; a signature field that says two things is a
// field to distrust).
func parseDictionary(s string, member func(key string, p *sfParser) error) error {
	if len(s) > maxFieldLen {
		return fmt.Errorf("field is over %d bytes", maxFieldLen)
	}
	p := &sfParser{s: s}
	p.skipSP()
	seen := map[string]bool{}
	if p.done() {
		return errors.New("empty dictionary")
	}
	for {
		key, err := p.key()
		if err != nil {
			return err
		}
		if seen[key] {
			return fmt.Errorf("key %q given twice", key)
		}
		seen[key] = true
		if p.peek() != '=' {
			return fmt.Errorf("key %q has no value", key)
		}
		p.i++
		if err := member(key, p); err != nil {
			return err
		}
		p.skipOWS()
		if p.done() {
			return nil
		}
		if p.peek() != ',' {
			return fmt.Errorf("unexpected %q after member %q", p.peek(), key)
		}
		p.i++
		p.skipOWS()
		if p.done() {
			return errors.New("trailing comma")
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.done() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// key parses an sf-key: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z') && c != '*' {
		return "", fmt.Errorf("a key must start with a-z or '*' at offset %d", p.i)
	}
	for !p.done() {
		c := p.s[p.i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], nil
}

// innerList parses ( *SP [ sf-item *( 1*SP sf-item ) *SP ] ) parameters,
// where every item is a string without parameters.
func (p *sfParser) innerList() (*signatureParams, error) {
	p.i++ // '('
	sp := &signatureParams{components: []string{}}
	for {
		p.skipSP()
		if p.done() {
			return nil, errors.New("unterminated inner list")
		}
		if p.peek() == ')' {
			p.i++
			break
		}
		if len(sp.components) > 0 && p.s[p.i-1] != ' ' {
			return nil, errors.New("items of an inner list must be separated by a space")
		}
		if p.peek() != '"' {
			return nil, fmt.Errorf("component identifier at offset %d is not a string", p.i)
		}
		c, err := p.str()
		if err != nil {
			return nil, err
		}
		if p.peek() == ';' {
			return nil, fmt.Errorf("component %q: component parameters are not supported", c)
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, fmt.Errorf("unexpected %q after a component identifier", c)
		}
		sp.components = append(sp.components, c)
		if len(sp.components) > 64 {
			return nil, errors.New("more than 64 components")
		}
	}
	params, err := p.parameters()
	if err != nil {
		return nil, err
	}
	sp.params = params
	return sp, nil
}

// parameters parses *( ";" *SP key [ "=" bare-item ] ).
func (p *sfParser) parameters() ([]param, error) {
	var out []param
	seen := map[string]bool{}
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("parameter %q given twice", key)
		}
		seen[key] = true
		var v any = true
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, fmt.Errorf("parameter %q: %w", key, err)
			}
		}
		out = append(out, param{key, v})
		if len(out) > 16 {
			return nil, errors.New("more than 16 parameters")
		}
	}
	return out, nil
}

// bareItem parses an integer, a string, a byte sequence or a boolean.
func (p *sfParser) bareItem() (any, error) {
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == ':':
		return p.byteSequence()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			v := p.s[p.i+1] == '1'
			p.i += 2
			return v, nil
		}
		return nil, errors.New("bad boolean")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.integer()
	default:
		return nil, fmt.Errorf("unsupported item at offset %d", p.i)
	}
}

func (p *sfParser) integer() (int64, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits := 0
	for !p.done() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
		digits++
	}
	if digits == 0 || digits > 15 {
		return 0, errors.New("an integer has 1 to 15 digits")
	}
	if p.peek() == '.' {
		return 0, errors.New("decimals are not used")
	}
	return strconv.ParseInt(p.s[start:p.i], 10, 64)
}

// str parses an sf-string: printable ASCII, with \" and \\ escapes only.
func (p *sfParser) str() (string, error) {
	p.i++ // '"'
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.done() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return "", errors.New("bad escape in a string")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", errors.New("a string holds printable ASCII only")
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}

// byteSequence parses ":" base64 ":" (standard alphabet, padded).
func (p *sfParser) byteSequence() ([]byte, error) {
	p.i++ // ':'
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, errors.New("unterminated byte sequence")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(p.s[p.i : p.i+end])
	if err != nil {
		return nil, fmt.Errorf("byte sequence: %w", err)
	}
	p.i += end + 1
	return b, nil
}
