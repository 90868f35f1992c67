// Package anthropic is the providers.Provider for the Anthropic Messages API.
//
// It streams every request (stream: true), lays the body out in the order of the
// prompt prefix (tools, system, messages) with the cache plan's cache_control
// breakpoints, and reads the answer's server-sent events into a providers.Response.
package anthropic

import (
	"context"
	"net/http"
	"strings"

	"github.com/stated-dev/stated/providers"
)

const (
	// DefaultBaseURL is the API root used when Config.BaseURL is empty, as the
	// official SDKs' ANTHROPIC_BASE_URL default.
	DefaultBaseURL = "https://api.anthropic.com"
	// DefaultMaxResponseBytes bounds a response when Config.MaxResponseBytes is 0.
	DefaultMaxResponseBytes = 64 << 20
	// APIVersion is the anthropic-version header every request carries.
	APIVersion = "2023-06-01"

	messagesPath = "/v1/messages"
	providerName = "anthropic"
)

// Config configures a Client. The zero value talks to DefaultBaseURL through
// http.DefaultClient, without an API key, with DefaultMaxResponseBytes.
type Config struct {
	// BaseURL is the API root; "/v1/messages" is appended. Empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the x-api-key header; it is never logged.
	APIKey string
	// HTTPClient sends the requests; nil means http.DefaultClient. A streamed answer
	// can take minutes, so its Timeout should be zero or long: cancel through ctx.
	HTTPClient *http.Client
	// MaxResponseBytes bounds the bytes read from one response; 0 or less means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Client sends requests to the Messages API. It is safe for concurrent use.
type Client struct {
	url      string
	apiKey   string
	http     *http.Client
	maxBytes int64
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client for cfg, with defaults for its zero fields.
func New(cfg Config) *Client {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	c := &Client{
		url:      strings.TrimRight(base, "/") + messagesPath,
		apiKey:   cfg.APIKey,
		http:     cfg.HTTPClient,
		maxBytes: cfg.MaxResponseBytes,
	}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxResponseBytes
	}
	return c
}

// Name returns "anthropic".
func (c *Client) Name() string { return providerName }

// Complete sends req and streams the answer, as providers.Provider documents.
//
// A request that cannot be sent (see MarshalRequest) fails with ErrInvalidRequest
// or ErrTooManyBreakpoints before any HTTP call. A failure to connect, an HTTP
// status other than 200 and an error event in the stream give a *providers.Error
// (Type providers.TypeConnection for the first); a stream that ends without
// message_stop gives an error matching providers.ErrStreamCut; a response past
// Config.MaxResponseBytes gives providers.ErrResponseTooLarge.
func (c *Client) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	body, err := marshalEncoded(req)
	if err != nil {
		return nil, err
	}

	header := http.Header{
		"X-Api-Key":         {c.apiKey},
		"Anthropic-Version": {APIVersion},
		"Content-Type":      {"application/json"},
		"Accept":            {"text/event-stream"},
	}
	resp, err := providers.Post(ctx, c.http, providerName, c.url, header, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, providers.HTTPError(providerName, resp, parseError)
	}

	return readStream(ctx, providers.LimitBody(resp.Body, c.maxBytes), onDelta)
}
