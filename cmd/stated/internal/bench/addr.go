package bench

import (
	"net"
	"net/netip"
)

// PerSource is the most connections one source address carries when
// connections spread over loopback addresses: well inside the ephemeral port
// range of one address (32768-60999 by default on Linux).
const PerSource = 10000

// firstSource is the first source address of a spread: 127.0.0.2, the one
// after the address servers usually listen on.
var firstSource = netip.AddrFrom4([4]byte{127, 0, 0, 2})

// Sources decides the local address of each connection to one server. To a
// server on an IPv4 loopback address, connection i leaves from 127.0.0.2 +
// i/PerSource, so that tens of thousands of connections do not run out of
// ephemeral ports; to any other server, connections leave from the address the
// system picks. The zero value spreads nothing.
type Sources struct {
	spread bool
	per    int
}

// NewSources returns the sources for connections to host (an IP address or a
// name, without port), at most per connections per source address (0 means
// PerSource). Only an IPv4 loopback address, or "localhost", is spread over.
func NewSources(host string, per int) Sources {
	if per <= 0 {
		per = PerSource
	}
	return Sources{spread: isIPv4Loopback(host), per: per}
}

// isIPv4Loopback reports whether host is an address of 127.0.0.0/8 or the
// name localhost (which the dialer then reaches at 127.0.0.1).
func isIPv4Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is4() && a.IsLoopback()
}

// Spread reports whether connections leave from spread loopback addresses.
func (s Sources) Spread() bool { return s.spread }

// Addr is the source address of connection i (from 0), or nil to let the
// system pick. Addresses stay within 127.0.0.0/8: beyond 127.255.255.254 they
// wrap around to 127.0.0.2 (some 167 billion connections later).
func (s Sources) Addr(i int) *net.TCPAddr {
	if !s.spread || i < 0 {
		return nil
	}
	const span = 1<<24 - 3 // 127.0.0.2 to 127.255.255.254
	n := uint32(i/s.per) % span
	base := firstSource.As4()
	v := uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += n
	ip := net.IPv4(127, byte(v>>16), byte(v>>8), byte(v))
	return &net.TCPAddr{IP: ip}
}

// dialHost is the host to dial for host: localhost is dialed at 127.0.0.1
// when connections spread, so that an IPv6 answer for the name cannot meet an
// IPv4 source address.
func (s Sources) dialHost(host string) string {
	if s.spread && host == "localhost" {
		return "127.0.0.1"
	}
	return host
}
