package openai

import (
	"context"
	"net/http"
	"strings"

	"github.com/stated-dev/stated/providers"
)

const (
	responsesPath         = "/responses"
	responsesProviderName = "openai-responses"
)

// ResponsesClient sends requests to the OpenAI Responses API (POST /responses).
// It is stateless: every request carries the whole conversation as input items
// with store set to false, so nothing is kept at the provider and a session never
// depends on a previous_response_id the provider may have dropped. It is safe for
// concurrent use.
type ResponsesClient struct {
	url      string
	apiKey   string
	http     *http.Client
	maxBytes int64
}

var _ providers.Provider = (*ResponsesClient)(nil)

// NewResponses returns a ResponsesClient for cfg, with the defaults New applies
// ("/responses" is appended to BaseURL). Config.Compat is not used.
func NewResponses(cfg Config) *ResponsesClient {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	c := &ResponsesClient{
		url:      strings.TrimRight(base, "/") + responsesPath,
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

// Name returns "openai-responses".
func (c *ResponsesClient) Name() string { return responsesProviderName }

// Complete sends req and streams the answer, as providers.Provider documents.
//
// A request that cannot be sent (see MarshalResponsesRequest) fails with
// ErrInvalidRequest before any HTTP call. A failure to connect, an HTTP status
// other than 200, a response.failed event and an error event give a
// *providers.Error; a stream that ends before response.completed or
// response.incomplete gives an error matching providers.ErrStreamCut; a response
// past Config.MaxResponseBytes gives providers.ErrResponseTooLarge.
func (c *ResponsesClient) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	body, err := MarshalResponsesRequest(req)
	if err != nil {
		return nil, err
	}

	resp, err := post(ctx, c.http, responsesProviderName, c.url, c.apiKey, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, providers.HTTPError(responsesProviderName, resp, parseError)
	}

	return readResponsesStream(ctx, providers.LimitBody(resp.Body, c.maxBytes), onDelta)
}
