package providers

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Defaults and bounds of the upstream HTTP client.
const (
	// DefaultIdleConnsPerHost is how many idle connections to one provider host
	// the client keeps when HTTPClientOptions.IdleConnsPerHost is 0: enough for
	// a busy server's concurrent answers to find a connection ready, where
	// http.DefaultClient keeps 2 and dials (and later closes) the rest.
	DefaultIdleConnsPerHost = 256
	// MaxIdleConnsPerHost bounds HTTPClientOptions.IdleConnsPerHost.
	MaxIdleConnsPerHost = 65536
	// DefaultIdleConnTimeout is how long an idle connection is kept.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultDialTimeout bounds the TCP connect to a provider.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake with a provider.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultKeepAlive is the TCP keep-alive period of upstream connections.
	DefaultKeepAlive = 30 * time.Second
)

// HTTPClientOptions configure NewHTTPClient. The zero value takes every default.
type HTTPClientOptions struct {
	// IdleConnsPerHost is how many idle connections to one host are kept for
	// reuse: 0 means DefaultIdleConnsPerHost; otherwise 1 to MaxIdleConnsPerHost.
	// The pool as a whole keeps at most this many per host it has seen.
	IdleConnsPerHost int
	// MaxConnsPerHost bounds the connections to one host, busy ones included; a
	// request over the bound waits for a connection to come free. 0 means no
	// bound, which is what a server whose turns must not queue behind each other
	// wants: over HTTP/2 one connection carries many answers anyway.
	MaxConnsPerHost int
}

// NewHTTPClient returns the HTTP client a server sends its provider requests
// through: a dedicated transport, so that its pool is the server's alone, which
// keeps up to IdleConnsPerHost idle connections to each provider host for
// DefaultIdleConnTimeout, bounds the dial and the TLS handshake, speaks HTTP/2
// where the provider offers it (many answers share one connection) and takes a
// proxy from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) as
// http.DefaultClient does. The client has no overall Timeout, since a streamed
// answer can last minutes: each request is bounded by its context.
//
// It returns an error wrapping ErrInvalidOptions when an option is out of
// bounds.
func NewHTTPClient(opts HTTPClientOptions) (*http.Client, error) {
	idle := opts.IdleConnsPerHost
	switch {
	case idle == 0:
		idle = DefaultIdleConnsPerHost
	case idle < 0 || idle > MaxIdleConnsPerHost:
		return nil, fmt.Errorf("%w: idle connections per host must be 1 to %d, not %d",
			ErrInvalidOptions, MaxIdleConnsPerHost, idle)
	}
	if opts.MaxConnsPerHost < 0 {
		return nil, fmt.Errorf("%w: connections per host must not be negative",
			ErrInvalidOptions)
	}
	dialer := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: DefaultKeepAlive}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no bound across hosts: the per-host bound holds
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       DefaultIdleConnTimeout,
		TLSHandshakeTimeout:   DefaultTLSHandshakeTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: transport}, nil
}
