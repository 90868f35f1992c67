// Package openai is the providers.Provider for the OpenAI Chat Completions API,
// and for servers that speak it.
//
// It streams every request with usage in the last chunk, sends the system prompt
// first and the tools after the messages, keeps a session on one prompt cache with
// prompt_cache_key, and reads the answer's chunks into a providers.Response.
package openai

import (
	"bytes"
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
}

// Client sends requests to the Chat Completions API. It is safe for concurrent use.
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
	return c
}

// Name returns "openai".
func (c *Client) Name() string { return providerName }

// Complete sends req and streams the answer, as providers.Provider documents.
//
// A request that cannot be sent (see MarshalRequest) fails with ErrInvalidRequest
// before any HTTP call. An HTTP status other than 200 and an error chunk in the
// stream give a *providers.Error; a stream that ends without "data: [DONE]" gives
// an error matching providers.ErrStreamCut; a response past
// Config.MaxResponseBytes gives ErrResponseTooLarge.
func (c *Client) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	body, err := MarshalRequest(req)
	if err != nil {
		return nil, err
	}

	resp, err := c.send(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp)
	}

	return readStream(ctx, newLimitedBody(resp.Body, c.maxBytes), onDelta)
}

func (c *Client) send(ctx context.Context, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("openai: build http request: %w", err)
	}
	if c.apiKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")

	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("openai: send request: %w", err)
	}
	return resp, nil
}
