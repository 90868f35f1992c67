package bench

import (
	"context"
	"net"
	"testing"
)

func TestSourcesSpreadOnlyOverIPv4Loopback(t *testing.T) {
	tests := []struct {
		name, host string
		spread     bool
	}{
		{"the usual loopback address spreads", "127.0.0.1", true},
		{"any address of 127.0.0.0/8 spreads", "127.5.6.7", true},
		{"localhost spreads", "localhost", true},
		{"IPv6 loopback does not spread", "::1", false},
		{"a private address does not spread", "10.0.0.1", false},
		{"a name does not spread", "example.com", false},
		{"an address next to loopback does not spread", "128.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSources(tt.host, 0)
			if s.Spread() != tt.spread {
				t.Fatalf("spread %v, want %v", s.Spread(), tt.spread)
			}
			if a := s.Addr(12345); (a != nil) != tt.spread {
				t.Fatalf("address %v with spread %v", a, tt.spread)
			}
		})
	}
}

func TestSourcesGiveEachAddressAtMostPerSourceConnections(t *testing.T) {
	s := NewSources("127.0.0.1", 0)
	tests := []struct {
		conn int
		want string
	}{
		{0, "127.0.0.2"},
		{PerSource - 1, "127.0.0.2"},
		{PerSource, "127.0.0.3"},
		{3*PerSource + 7, "127.0.0.5"},
		{254 * PerSource, "127.0.1.0"},
		{(1<<16 - 2) * PerSource, "127.1.0.0"},
	}
	for _, tt := range tests {
		if got := s.Addr(tt.conn).IP.String(); got != tt.want {
			t.Errorf("connection %d leaves from %s, want %s", tt.conn, got, tt.want)
		}
	}
	if got := NewSources("localhost", 0).dialHost("localhost"); got != "127.0.0.1" {
		t.Errorf("localhost is dialed at %s", got)
	}
}

func TestSpreadConnectionsReallyLeaveFromTheirAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := NewSources("127.0.0.1", 2)
	for i, want := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.3"} {
		d := net.Dialer{LocalAddr: s.Addr(i)}
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got := sc.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
		sc.Close()
		if got != want {
			t.Fatalf("connection %d arrived from %s, want %s", i, got, want)
		}
	}
}
