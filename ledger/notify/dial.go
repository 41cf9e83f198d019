package notify

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// errRefusedAddress is wrapped when a target resolves to an address the
// operator did not allow.
var errRefusedAddress = errors.New("notify: the target's address is not public and not allowed")

// nonPublic are the ranges a webhook must not reach unless the operator
// lists them: the ledger's own machine and networks, which a party's
// webhook URL (the covenant is written by others) could otherwise probe.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// AddressAllowed reports whether a webhook may connect to ip: a public
// address, or one inside a range of allow.
func AddressAllowed(ip netip.Addr, allow []netip.Prefix) bool {
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	if !ip.IsValid() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// guardedDialer checks each address after DNS resolution, just before the
// connection is made (net.Dialer.Control), so a name that resolves to a
// public address at parse time and to an internal one at dial time (DNS
// rebinding) is still refused. With allowHTTPLoopback, loopback addresses
// are allowed too.
func guardedDialer(allow []netip.Prefix, allowHTTPLoopback bool) *net.Dialer {
	if allowHTTPLoopback {
		allow = append(allow[:len(allow):len(allow)], netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	return &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errRefusedAddress, address)
			}
			if !AddressAllowed(ap.Addr(), allow) {
				return fmt.Errorf("%w: %s", errRefusedAddress, ap.Addr())
			}
			return nil
		},
	}
}

// CheckURL checks a webhook URL as the covenant and the configuration must
// give it: https (or, with allowHTTPLoopback, http to localhost or a
// loopback address), a host, no user information and no fragment.
func CheckURL(s string, allowHTTPLoopback bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("webhook URL: %w", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("webhook URL has no host")
	}
	if u.User != nil {
		return errors.New("webhook URL must not carry credentials")
	}
	if u.Fragment != "" {
		return errors.New("webhook URL must not have a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTPLoopback && isLoopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("webhook URL must be https (http only to loopback with the development flag)")
	default:
		return fmt.Errorf("webhook URL scheme %q: must be https", u.Scheme)
	}
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
