package desk

// TOTP (RFC 6238) on the standard library: HMAC-SHA1 over the count of
// 30-second steps since the Unix epoch, dynamically truncated to six digits
// (RFC 4226 section 5.3). These are the parameters every authenticator app
// uses by default; an otpauth:// URI that states them is handed to the app.

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

const (
	totpStep   = 30 // seconds
	totpDigits = 6
	// totpSkew is how many steps either side of now a code is accepted:
	// one, for a phone whose clock is a little off and a desk user who
	// types slowly.
	totpSkew = 1
	// totpSecretSize is 160 bits, the HMAC-SHA1 key size RFC 4226
	// recommends.
	totpSecretSize = 20
)

// hotp is the RFC 4226 one-time password of secret at counter.
func hotp(secret []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", bin%1_000_000)
}

func totpCounter(t time.Time) uint64 { return uint64(t.Unix()) / totpStep }

// TOTP is the six-digit code of secret at time t (RFC 6238, HMAC-SHA1,
// 30-second steps): what the desk user's authenticator app shows.
func TOTP(secret []byte, t time.Time) string { return hotp(secret, totpCounter(t)) }

// checkTOTP reports whether code is secret's code within totpSkew steps of
// now and at a step after last (the last step accepted for this user, so
// that a code seen over a shoulder cannot be used twice), and at which step.
func checkTOTP(secret []byte, code string, now time.Time, last uint64) (uint64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	c := totpCounter(now)
	for d := -totpSkew; d <= totpSkew; d++ {
		step := uint64(int64(c) + int64(d))
		if step <= last {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(secret, step)), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// TOTPSecretText is a TOTP secret as authenticator apps take it typed in:
// base32 without padding.
func TOTPSecretText(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// ParseTOTPSecret reads a secret as TOTPSecretText writes it (spaces and
// lower case, as people copy it, are taken too).
func ParseTOTPSecret(text string) ([]byte, error) {
	text = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(text), " ", ""))
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(text, "="))
	if err != nil || len(b) < 10 {
		return nil, fmt.Errorf("desk: not a TOTP secret in base32: %w", errors.Join(err, errors.New("too short or malformed")))
	}
	return b, nil
}

// OTPAuthURI is the otpauth:// URI of a desk user's TOTP secret (the key
// URI format authenticator apps read, often from a QR code).
func OTPAuthURI(issuer, user string, secret []byte) string {
	v := url.Values{}
	v.Set("secret", TOTPSecretText(secret))
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(totpDigits))
	v.Set("period", fmt.Sprint(totpStep))
	return (&url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + user, RawQuery: v.Encode()}).String()
}
