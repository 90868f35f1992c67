package anthropic

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

// httpErrorCase is an HTTP error answer and the *providers.Error it must give.
type httpErrorCase struct {
	name    string
	respond http.HandlerFunc
	want    providers.Error
	// retryMin and retryMax bound RetryAfter for a header given as a date.
	retryMin, retryMax time.Duration
}

var httpErrorCases = []httpErrorCase{
	{
		name: "429 with retry-after in seconds",
		respond: errorStatus(429, `{"type":"error","error":{"type":"rate_limit_error",`+
			`"message":"Number of request tokens has exceeded your rate limit"}}`,
			"retry-after", "7"),
		want: providers.Error{Provider: "anthropic", Status: 429, Type: "rate_limit_error",
			Message:    "Number of request tokens has exceeded your rate limit",
			RetryAfter: 7 * time.Second, Temporary: true},
	},
	{
		name: "429 with retry-after as an http date",
		respond: errorStatus(429, `{"type":"error","error":{"type":"rate_limit_error",`+
			`"message":"slow down"}}`, "retry-after", retryDate),
		want: providers.Error{Provider: "anthropic", Status: 429, Type: "rate_limit_error",
			Message: "slow down", Temporary: true},
		retryMin: 80 * time.Second, retryMax: 91 * time.Second,
	},
	{
		name: "529 overloaded",
		respond: errorStatus(529, `{"type":"error","error":{"type":"overloaded_error",`+
			`"message":"Overloaded"}}`),
		want: providers.Error{Provider: "anthropic", Status: 529, Type: "overloaded_error",
			Message: "Overloaded", Temporary: true},
	},
	{
		name: "401 with a bad key is not temporary",
		respond: errorStatus(401, `{"type":"error","error":{"type":"authentication_error",`+
			`"message":"invalid x-api-key"}}`),
		want: providers.Error{Provider: "anthropic", Status: 401,
			Type: "authentication_error", Message: "invalid x-api-key"},
	},
	{
		name: "400 invalid request is not temporary",
		respond: errorStatus(400, `{"type":"error","error":{"type":"invalid_request_error",`+
			`"message":"messages: roles must alternate"}}`),
		want: providers.Error{Provider: "anthropic", Status: 400,
			Type: "invalid_request_error", Message: "messages: roles must alternate"},
	},
	{
		name: "403 permission error is not temporary",
		respond: errorStatus(403, `{"type":"error","error":{"type":"permission_error",`+
			`"message":"no access to this model"}}`),
		want: providers.Error{Provider: "anthropic", Status: 403, Type: "permission_error",
			Message: "no access to this model"},
	},
	{
		name: "404 not found is not temporary",
		respond: errorStatus(404, `{"type":"error","error":{"type":"not_found_error",`+
			`"message":"model: claude-nonexistent"}}`),
		want: providers.Error{Provider: "anthropic", Status: 404, Type: "not_found_error",
			Message: "model: claude-nonexistent"},
	},
	{
		name: "413 request too large is not temporary",
		respond: errorStatus(413, `{"type":"error","error":{"type":"request_too_large",`+
			`"message":"Request exceeds the maximum allowed number of bytes."}}`),
		want: providers.Error{Provider: "anthropic", Status: 413, Type: "request_too_large",
			Message: "Request exceeds the maximum allowed number of bytes."},
	},
	{
		name: "500 api error is temporary",
		respond: errorStatus(500, `{"type":"error","error":{"type":"api_error",`+
			`"message":"Internal server error"}}`),
		want: providers.Error{Provider: "anthropic", Status: 500, Type: "api_error",
			Message: "Internal server error", Temporary: true},
	},
	{
		name: "529 overloaded with retry-after-ms",
		respond: errorStatus(529, `{"type":"error","error":{"type":"overloaded_error",`+
			`"message":"Overloaded"}}`, "retry-after-ms", "1500"),
		want: providers.Error{Provider: "anthropic", Status: 529, Type: "overloaded_error",
			Message: "Overloaded", RetryAfter: 1500 * time.Millisecond, Temporary: true},
	},
	{
		name:    "502 from a proxy with an html body",
		respond: errorStatus(502, "<html>bad gateway</html>\n"),
		want: providers.Error{Provider: "anthropic", Status: 502,
			Message: "<html>bad gateway</html>", Temporary: true},
	},
	{
		name:    "500 with an empty body",
		respond: errorStatus(500, ""),
		want: providers.Error{Provider: "anthropic", Status: 500,
			Message: "Internal Server Error", Temporary: true},
	},
}

func TestCompleteReportsHTTPErrors(t *testing.T) {
	for _, tc := range httpErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.respond)
			got, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
			if got != nil {
				t.Errorf("response %+v, want nil", got)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *providers.Error", err)
			}
			e := *pe
			if tc.retryMax > 0 {
				if e.RetryAfter < tc.retryMin || e.RetryAfter > tc.retryMax {
					t.Errorf("retry after %v, want %v..%v", e.RetryAfter, tc.retryMin, tc.retryMax)
				}
				e.RetryAfter = 0
			}
			if e != tc.want {
				t.Errorf("error\n got %+v\nwant %+v", e, tc.want)
			}
		})
	}
}

func TestCompleteReportsAConnectionFailureAsATemporaryError(t *testing.T) {
	srv := startServer(t, streamPieces(textStream))
	c := srv.client(Config{})
	srv.Close() // the port now refuses connections

	got, err := c.Complete(context.Background(), toolRoundTrip(), nil)
	var pe *providers.Error
	if got != nil || !errors.As(err, &pe) {
		t.Fatalf("got %v, %v; want nil and a *providers.Error", got, err)
	}
	if pe.Type != providers.TypeConnection || !pe.Temporary || pe.Status != 0 ||
		pe.Provider != "anthropic" {
		t.Fatalf("error %+v, want a temporary connection error", *pe)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v does not unwrap to ECONNREFUSED", err)
	}
}

func TestCompleteReportsACancelBeforeTheResponseAsTheContextsError(t *testing.T) {
	srv := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := srv.client(Config{}).Complete(ctx, toolRoundTrip(), nil)
	var pe *providers.Error
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &pe) {
		t.Fatalf("err %v, want the context's deadline and no provider error", err)
	}
}

func TestCompleteReadsAtMost64KiBOfAnErrorBody(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	srv := startServer(t, errorStatus(500, huge))
	_, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
	var pe *providers.Error
	if !errors.As(err, &pe) || len(pe.Message) > 64<<10 {
		t.Fatalf("err %v", err)
	}
}
