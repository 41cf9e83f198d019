package desk

import (
	"strings"
	"testing"
	"time"
)

// TestTOTPRFC6238Vectors checks the code against the SHA-1 test vectors of
// RFC 6238 appendix B (their eight digits, of which a six-digit code is the
// last six: the truncation is modulo 10^digits).
func TestTOTPRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := TOTP(secret, time.Unix(v.unix, 0)); got != v.want[2:] {
			t.Errorf("TOTP at %d: %s, want %s", v.unix, got, v.want[2:])
		}
	}
}

// TestCheckTOTP: a code is good one step either side of now and not
// further; a step used once is not accepted again; a code of the wrong
// length never is.
func TestCheckTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1_700_000_000, 0)
	for _, c := range []struct {
		at   time.Duration
		last uint64
		ok   bool
	}{
		{0, 0, true},
		{-30 * time.Second, 0, true},
		{30 * time.Second, 0, true},
		{-60 * time.Second, 0, false},
		{90 * time.Second, 0, false},
		{0, totpCounter(now), false}, // replay of the step just used
		{30 * time.Second, totpCounter(now), true},
	} {
		code := TOTP(secret, now.Add(c.at))
		if _, ok := checkTOTP(secret, code, now, c.last); ok != c.ok {
			t.Errorf("code of now%+v with last step %d: accepted %v, want %v", c.at, c.last, ok, c.ok)
		}
	}
	if _, ok := checkTOTP(secret, TOTP(secret, now)+"0", now, 0); ok {
		t.Error("a seven-digit code was accepted")
	}
}

// TestTOTPSecretText: the text adduser prints reads back, also as people
// copy it (in groups, lower case); a short or malformed one does not.
func TestTOTPSecretText(t *testing.T) {
	secret := []byte("12345678901234567890")
	text := TOTPSecretText(secret)
	grouped := strings.ToLower(text[:4] + " " + text[4:])
	for _, in := range []string{text, grouped} {
		got, err := ParseTOTPSecret(in)
		if err != nil || string(got) != string(secret) {
			t.Errorf("ParseTOTPSecret(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ABC", "not base32 at all!"} {
		if _, err := ParseTOTPSecret(in); err == nil {
			t.Errorf("ParseTOTPSecret(%q) took it", in)
		}
	}
}
