// Package openai holds the providers.Provider adapters for the OpenAI APIs: Chat
// Completions (Client, also for servers that speak it, see Compat) and Responses
// (ResponsesClient).
//
// Both stream every request with usage at the end, send the system prompt first,
// keep a session on one prompt cache with prompt_cache_key, and read the answer's
// events into a providers.Response.
package openai

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/stated-dev/stated/providers"
)

const (
	// DefaultBaseURL is the API root used when Config.BaseURL is empty, as the
	// official SDKs' OPENAI_BASE_URL default.
	DefaultBaseURL = "https://api.openai.com/v1"
	// DefaultMaxResponseBytes bounds a response when Config.MaxResponseBytes is 0.
	DefaultMaxResponseBytes = 64 << 20

	completionsPath = "/chat/completions"
	providerName    = "openai"
)

// Config configures a Client. The zero value talks to DefaultBaseURL through
// http.DefaultClient, without an API key, with DefaultMaxResponseBytes.
type Config struct {
	// BaseURL is the API root, including its version; "/chat/completions" is
	// appended. Empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as a bearer token; it is never logged. Empty sends no
	// Authorization header, for local servers that need none.
	APIKey string
	// HTTPClient sends the requests; nil means http.DefaultClient. A streamed answer
	// can take minutes, so its Timeout should be zero or long: cancel through ctx.
	HTTPClient *http.Client
	// MaxResponseBytes bounds the bytes read from one response; 0 or less means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Compat says how the server differs from the OpenAI API (see Preset); nil
	// means the OpenAI API. The Responses adapter ignores it.
	Compat *Compat
}

// Client sends requests to the Chat Completions API. It is safe for concurrent use.
type Client struct {
	url      string
	apiKey   string
	http     *http.Client
	maxBytes int64
	compat   Compat
	// compatErr is why Compat cannot be used; every Complete returns it.
	compatErr error
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client for cfg, with defaults for its zero fields. A Compat that
// fails its Validate makes every Complete fail with an error matching
// ErrInvalidRequest.
func New(cfg Config) *Client {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	c := &Client{
		url:      strings.TrimRight(base, "/") + completionsPath,
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
	c.compat = presets["openai"]
	if cfg.Compat != nil {
		c.compat = *cfg.Compat
	}
	if err := c.compat.Validate(); err != nil {
		c.compatErr = fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return c
}

// Name returns "openai".
func (c *Client) Name() string { return providerName }

// Complete sends req and streams the answer, as providers.Provider documents.
//
// A request that cannot be sent (see MarshalRequest) fails with ErrInvalidRequest
// before any HTTP call. A failure to connect, an HTTP status other than 200 and an
// error chunk in the stream give a *providers.Error (Type providers.TypeConnection
// for the first); a stream that ends without "data: [DONE]" gives an error
// matching providers.ErrStreamCut; a response past Config.MaxResponseBytes gives
// providers.ErrResponseTooLarge.
func (c *Client) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	if c.compatErr != nil {
		return nil, c.compatErr
	}
	body, err := marshalEncoded(req, &c.compat)
	if err != nil {
		return nil, err
	}

	resp, err := post(ctx, c.http, providerName, c.url, c.apiKey, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, providers.HTTPError(providerName, resp, parseError)
	}

	return readStream(ctx, providers.LimitBody(resp.Body, c.maxBytes), onDelta,
		&c.compat.Usage)
}

// post sends a streaming JSON request for the adapter named provider, with the key
// as a bearer token, or without an Authorization header when there is no key
// (local servers need none).
func post(ctx context.Context, client *http.Client, provider, url, apiKey string,
	body []byte) (*http.Response, error) {
	header := http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"text/event-stream"},
	}
	if apiKey != "" {
		header.Set("Authorization", "Bearer "+apiKey)
	}
	return providers.Post(ctx, client, provider, url, header, body)
}
