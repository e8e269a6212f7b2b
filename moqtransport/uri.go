package moqtransport

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/moqgo/moq/moqtransport/wire"
)

// The PATH and AUTHORITY setup parameters follow RFC 3986 (draft-14
// §9.3.2): one that does not closes the session with MALFORMED_PATH or
// MALFORMED_AUTHORITY.

// checkPath checks a PATH parameter: RFC 3986 path-abempty, then an
// optional "?" and query (§9.3.2.2: the client appends the URI's query).
func checkPath(p string) error {
	path, query, hasQuery := strings.Cut(p, "?")
	if path != "" && path[0] != '/' {
		return malformedPath(p, "does not start with /")
	}
	// path-abempty = *( "/" segment ), segment = *pchar
	if i, why := badURIChars(path, ":@/"); i >= 0 {
		return malformedPath(p, fmt.Sprintf("has %s at byte %d", why, i))
	}
	if hasQuery {
		// query = *( pchar / "/" / "?" )
		if i, why := badURIChars(query, ":@/?"); i >= 0 {
			return malformedPath(p, fmt.Sprintf("has %s at byte %d", why, len(path)+1+i))
		}
	}
	return nil
}

func malformedPath(p, why string) error {
	return &wire.SessionError{Code: wire.MalformedPath, Reason: fmt.Sprintf("PATH %q %s; it must be an RFC 3986 path-abempty with an optional ?query", p, why)}
}

// checkAuthority checks an AUTHORITY parameter: RFC 3986
// authority = [ userinfo "@" ] host [ ":" port ], with a host that is not
// empty (draft-14 §3.1.2). draft-14 does not forbid userinfo, so a
// well-formed one is accepted.
func checkAuthority(a string) error {
	hostport := a
	if at := strings.IndexByte(a, '@'); at >= 0 {
		// userinfo = *( unreserved / pct-encoded / sub-delims / ":" )
		if i, why := badURIChars(a[:at], ":"); i >= 0 {
			return malformedAuthority(a, fmt.Sprintf("has %s in its userinfo at byte %d", why, i))
		}
		hostport = a[at+1:]
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return malformedAuthority(a, "has an IP literal without its closing ]")
		}
		if !validIPLiteral(hostport[1:end]) {
			return malformedAuthority(a, fmt.Sprintf("has an invalid IP literal [%s]", hostport[1:end]))
		}
		host, port = hostport[:end+1], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return malformedAuthority(a, "has bytes after its IP literal that are not a :port")
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i:]
	}
	if host == "" {
		return malformedAuthority(a, "has an empty host (draft-14 §3.1.2)")
	}
	if host[0] != '[' {
		// reg-name (an IPv4address is one too) =
		// *( unreserved / pct-encoded / sub-delims )
		if i, why := badURIChars(host, ""); i >= 0 {
			return malformedAuthority(a, fmt.Sprintf("has %s in its host at byte %d", why, i))
		}
	}
	// port = *DIGIT
	for i := 1; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return malformedAuthority(a, fmt.Sprintf("has a port %q that is not digits", port[1:]))
		}
	}
	return nil
}

func malformedAuthority(a, why string) error {
	return &wire.SessionError{Code: wire.MalformedAuthority, Reason: fmt.Sprintf("AUTHORITY %q %s; it must be an RFC 3986 authority: host or [IPv6] with an optional :port", a, why)}
}

// validIPLiteral checks the inside of an RFC 3986 IP-literal: an IPv6
// address (no zone: RFC 3986 has none) or an IPvFuture,
// "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ).
func validIPLiteral(s string) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		hex, rest, ok := strings.Cut(s[1:], ".")
		if !ok || hex == "" || rest == "" {
			return false
		}
		for i := 0; i < len(hex); i++ {
			if !isHex(hex[i]) {
				return false
			}
		}
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; !isUnreserved(c) && !isSubDelim(c) && c != ':' {
				return false
			}
		}
		return true
	}
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6() && addr.Zone() == ""
}

// badURIChars finds the first byte of s that is neither unreserved,
// pct-encoded nor a sub-delim of RFC 3986, nor one of extra (":@" makes
// the set pchar), and says what it is; -1 when there is none. A '%' must
// start a pct-encoded triplet.
func badURIChars(s, extra string) (int, string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return i, "a '%' not followed by two hex digits"
			}
			i += 2
		case isUnreserved(c), isSubDelim(c), strings.IndexByte(extra, c) >= 0:
		case c <= 0x20 || c >= 0x7f:
			return i, fmt.Sprintf("byte 0x%02x", c)
		default:
			return i, fmt.Sprintf("'%c'", c)
		}
	}
	return -1, ""
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
