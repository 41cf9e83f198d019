package events

// The witness policy: which independent witnesses must cosign a checkpoint
// before anyone relies on it, in the C2SP tlog-policy text format. It is a
// covenant field (Covenant.WitnessPolicy), so it is signed by the
// administrator and logged with each covenant version; the verifier
// (verifier.CheckWitnessPolicy) evaluates it against a checkpoint's
// cosignatures and the witness client (witness/client) asks its witnesses.
//
// The parser is written here rather than taken from Tessera
// (NewWitnessGroupFromPolicy, v1.0.4): importing Tessera would pull its
// storage drivers and their dependency tree into package events, which every
// organisation's system and every verifier (also the browser build) imports;
// and Tessera's parser is lenient where a signed covenant must not be
// (unknown lines are skipped there, refused here). It lives in events, not
// in verifier, because the covenant's validation needs it and events may
// import nothing of Spoor (verifier imports events).

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// ErrWitnessPolicy is wrapped by every error of ParseWitnessPolicy.
var ErrWitnessPolicy = errors.New("invalid witness policy")

// Limits keep a policy small enough to evaluate without thought and to
// fit in a covenant: no real deployment has more than a handful of
// witnesses.
const (
	maxPolicyWitnesses = 64
	maxPolicyGroups    = 64
	maxPolicyLineLen   = 1024
)

// PolicyNone is the quorum name meaning "no witness is needed": valid
// tlog-policy, refused in a covenant.
const PolicyNone = "none"

// WitnessPolicy is a parsed tlog-policy text. Names are unique across
// witnesses and groups; a group names only witnesses and groups defined
// on earlier lines, so the policy is a tree (a DAG) with no cycles.
type WitnessPolicy struct {
	// Logs are the `log <vkey> [url]` lines, in order.
	Logs []PolicyLog
	// Witnesses are the `witness <name> <vkey> [url]` lines, in order.
	Witnesses []PolicyWitness
	// Groups are the `group <name> <k>|all|any <members...>` lines, in order.
	Groups []PolicyGroup
	// Quorum is the name in the one `quorum <name>` line: a witness, a
	// group, or PolicyNone.
	Quorum string
	// QuorumLine is the line of the quorum line (1-based).
	QuorumLine int
}

// PolicyLog is a `log` line: a log the policy is for.
type PolicyLog struct {
	VKey string
	URL  string
	Line int
	// Verifier verifies the log's Ed25519 note signatures.
	Verifier note.Verifier
}

// PolicyWitness is a `witness` line.
type PolicyWitness struct {
	Name string
	VKey string
	// URL is the witness's tlog-witness prefix (add-checkpoint is POSTed
	// to URL + "/add-checkpoint"); empty when the policy gives none.
	URL  string
	Line int
	// Verifier verifies the witness's timestamped cosignature/v1 lines.
	Verifier note.Verifier
}

// PolicyGroup is a `group` line: met when at least Threshold of Members
// (witnesses or earlier groups) are met.
type PolicyGroup struct {
	Name      string
	Threshold int
	Members   []string
	Line      int
}

// WitnessPolicyError is one problem on one line of a policy text.
type WitnessPolicyError struct {
	Line   int
	Reason string
}

func (e *WitnessPolicyError) Error() string {
	return fmt.Sprintf("%s: line %d: %s", ErrWitnessPolicy, e.Line, e.Reason)
}

// Unwrap lets errors.Is find ErrWitnessPolicy.
func (e *WitnessPolicyError) Unwrap() error { return ErrWitnessPolicy }

// ParseWitnessPolicy parses a tlog-policy text strictly: blank lines and
// lines starting with '#' are skipped; every other line is one of log,
// witness, group or quorum with exactly the arguments the format allows;
// names are unique and defined before use; a group's threshold is from 1
// to its number of (distinct) members; two witnesses may not share a key;
// there is exactly one quorum line. The first problem is returned as a
// *WitnessPolicyError naming its line.
func ParseWitnessPolicy(text string) (*WitnessPolicy, error) {
	p := &WitnessPolicy{}
	defined := map[string]bool{PolicyNone: true}
	keys := map[string]string{} // key name+hash -> witness name
	bad := func(line int, format string, args ...any) error {
		return &WitnessPolicyError{Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	n := 0
	for raw := range strings.Lines(text) {
		n++
		line := strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		if len(line) > maxPolicyLineLen {
			return nil, bad(n, "longer than %d bytes", maxPolicyLineLen)
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r != ' ' && r != '\t' && unicode.IsControl(r) }) {
			return nil, bad(n, "contains a control character")
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if p.Quorum != "" {
			return nil, bad(n, "follows the quorum line (the quorum comes last, once)")
		}
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return nil, bad(n, "want \"log <vkey> [url]\"")
			}
			v, err := note.NewVerifier(f[1])
			if err != nil {
				return nil, bad(n, "the log key is not an Ed25519 signed-note verifier key: %v", err)
			}
			l := PolicyLog{VKey: f[1], Line: n, Verifier: v}
			if len(f) == 3 {
				if l.URL, err = policyURL(f[2]); err != nil {
					return nil, bad(n, "%v", err)
				}
			}
			p.Logs = append(p.Logs, l)
		case "witness":
			if len(f) < 3 || len(f) > 4 {
				return nil, bad(n, "want \"witness <name> <vkey> [url]\"")
			}
			if err := checkPolicyName(f[1], defined); err != nil {
				return nil, bad(n, "%v", err)
			}
			if len(p.Witnesses) == maxPolicyWitnesses {
				return nil, bad(n, "more than %d witnesses", maxPolicyWitnesses)
			}
			v, err := fnote.NewVerifierForCosignatureV1(f[2])
			if err != nil {
				return nil, bad(n, "the key of witness %s is not a cosignature/v1 verifier key: %v", f[1], err)
			}
			id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
			if other, ok := keys[id]; ok {
				return nil, bad(n, "witness %s has the key of witness %s", f[1], other)
			}
			keys[id] = f[1]
			w := PolicyWitness{Name: f[1], VKey: f[2], Line: n, Verifier: v}
			if len(f) == 4 {
				if w.URL, err = policyURL(f[3]); err != nil {
					return nil, bad(n, "%v", err)
				}
			}
			defined[f[1]] = true
			p.Witnesses = append(p.Witnesses, w)
		case "group":
			if len(f) < 4 {
				return nil, bad(n, "want \"group <name> <k>|all|any <member> ...\"")
			}
			if err := checkPolicyName(f[1], defined); err != nil {
				return nil, bad(n, "%v", err)
			}
			if len(p.Groups) == maxPolicyGroups {
				return nil, bad(n, "more than %d groups", maxPolicyGroups)
			}
			members := f[3:]
			for i, m := range members {
				switch {
				case m == PolicyNone || !defined[m]:
					return nil, bad(n, "group %s names %q, which no earlier line defines", f[1], m)
				case i > 0 && strings.Contains(" "+strings.Join(members[:i], " ")+" ", " "+m+" "):
					return nil, bad(n, "group %s names %s twice", f[1], m)
				}
			}
			k, err := policyThreshold(f[2], len(members))
			if err != nil {
				return nil, bad(n, "group %s: %v", f[1], err)
			}
			defined[f[1]] = true
			p.Groups = append(p.Groups, PolicyGroup{Name: f[1], Threshold: k, Members: members, Line: n})
		case "quorum":
			if len(f) != 2 {
				return nil, bad(n, "want \"quorum <name>\"")
			}
			if !defined[f[1]] {
				return nil, bad(n, "the quorum names %q, which no earlier line defines", f[1])
			}
			p.Quorum, p.QuorumLine = f[1], n
		default:
			return nil, bad(n, "unknown keyword %q (want log, witness, group or quorum)", f[0])
		}
	}
	if p.Quorum == "" {
		return nil, bad(n+1, "no quorum line")
	}
	return p, nil
}

// checkPolicyName checks a new witness or group name: printable, not a
// keyword of the format, not defined before.
func checkPolicyName(name string, defined map[string]bool) error {
	switch {
	case name == PolicyNone || name == "all" || name == "any":
		return fmt.Errorf("%q is a reserved word, not a name", name)
	case strings.TrimLeft(name, "0123456789") == "":
		return fmt.Errorf("the name %q is a number", name)
	case strings.HasPrefix(name, "#"):
		return fmt.Errorf("the name %q starts with '#'", name)
	case defined[name]:
		return fmt.Errorf("the name %s is defined twice", name)
	}
	return nil
}

// policyThreshold parses a group's threshold: all, any, or a decimal k
// from 1 to the number of members.
func policyThreshold(s string, members int) (int, error) {
	switch s {
	case "all":
		return members, nil
	case "any":
		return 1, nil
	}
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("threshold %q is not all, any or a number", s)
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > members {
		return 0, fmt.Errorf("threshold %s is not from 1 to its %d members", s, members)
	}
	return k, nil
}

// policyURL accepts an absolute http or https URL with a host and no
// query or fragment (a prefix paths are appended to), without its final
// '/'.
func policyURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("the URL %q does not parse", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("the URL %q is not http:// or https://", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("the URL %q is not a prefix (a host, maybe a path; no user, query or fragment)", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// Met reports whether the quorum is met when exactly the witnesses for
// which cosigned returns true have cosigned. A quorum of PolicyNone is
// always met.
func (p *WitnessPolicy) Met(cosigned func(witness string) bool) bool {
	if p.Quorum == PolicyNone {
		return true
	}
	met := map[string]bool{}
	for _, w := range p.Witnesses {
		met[w.Name] = cosigned(w.Name)
	}
	// Groups only name earlier lines, so one pass in order decides them.
	for _, g := range p.Groups {
		k := 0
		for _, m := range g.Members {
			if met[m] {
				k++
			}
		}
		met[g.Name] = k >= g.Threshold
	}
	return met[p.Quorum]
}

// Witness returns the witness named name.
func (p *WitnessPolicy) Witness(name string) (PolicyWitness, bool) {
	for _, w := range p.Witnesses {
		if w.Name == name {
			return w, true
		}
	}
	return PolicyWitness{}, false
}

// checkOperatorCannotMeet refuses a policy the log's operator could meet on
// its own: quorum none, a log line for another origin, or a quorum met by
// the witnesses whose key is the log's own key or its cosigner key
// ("<origin>/cosigner"). It returns the line and reason, or 0.
func (p *WitnessPolicy) checkOperatorCannotMeet(origin string) (int, string) {
	if p.Quorum == PolicyNone {
		return p.QuorumLine, "the quorum is none: a checkpoint would need no witness"
	}
	for _, l := range p.Logs {
		if l.Verifier.Name() != origin {
			return l.Line, fmt.Sprintf("the log key is named %q, not the covenant's origin %q", l.Verifier.Name(), origin)
		}
	}
	operator := func(name string) bool {
		w, _ := p.Witness(name)
		k := w.Verifier.Name()
		return k == origin || k == origin+"/cosigner"
	}
	if p.Met(operator) {
		return p.QuorumLine, "the quorum could be met by the log's own keys alone (" + origin + " or " + origin + "/cosigner)"
	}
	return 0, ""
}

// PolicyMember is a witness named in a policy ThresholdPolicy writes.
type PolicyMember struct{ Name, VKey, URL string }

// ThresholdPolicy writes the tlog-policy text for the log with logVkey in
// which k of ws, gathered in a group named group, must cosign: the shape
// of policy a covenant's witnesses (one per FG) usually have.
func ThresholdPolicy(logVkey, group string, k int, ws []PolicyMember) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", logVkey)
	names := make([]string, len(ws))
	for i, w := range ws {
		fmt.Fprintf(&b, "witness %s %s %s\n", w.Name, w.VKey, w.URL)
		names[i] = w.Name
	}
	fmt.Fprintf(&b, "group %s %d %s\nquorum %s\n", group, k, strings.Join(names, " "), group)
	return b.String()
}
