package providers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits of what the adapters read from a provider outside the answer's stream.
const (
	// MaxErrorBody bounds how much of an error response is read.
	MaxErrorBody = 64 << 10
	// MaxErrorMessage bounds the message kept from an error body that is not the
	// provider's error JSON.
	MaxErrorMessage = 512
	// MaxRetryAfter bounds a server's retry-after hint.
	MaxRetryAfter = 24 * time.Hour
)

// Post sends body as a JSON POST to url with header through client and returns
// the response, whatever its status. A failure before any response becomes ctx's
// error when ctx ended, and otherwise a temporary *Error of Type TypeConnection
// (see ConnectionError). The caller closes the response body. The first request
// sent under a Trace (WithTrace) reports to it when it was fully written.
func Post(ctx context.Context, client *http.Client, provider, url string,
	header http.Header, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(traced(ctx), http.MethodPost, url,
		bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("providers: %s: build http request: %w", provider, err)
	}
	for name, values := range header {
		hreq.Header[name] = values
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, ConnectionError(ctx, provider, err)
	}
	return resp, nil
}

// ConnectionError translates the failure of an HTTP call that got no response:
// ctx's error, wrapped, when ctx ended (a cancel is not a provider failure), and
// otherwise a temporary *Error of Type TypeConnection whose Cause is err. The
// message names the failure but never the request's headers, so no key leaks.
func ConnectionError(ctx context.Context, provider string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("providers: %s: send request: %w", provider, ctxErr)
	}
	return &Error{
		Provider:  provider,
		Type:      TypeConnection,
		Message:   err.Error(),
		Temporary: true,
		Cause:     err,
	}
}

// HTTPError reads the error body of a non-200 response, at most MaxErrorBody
// bytes, into a *Error with the status, the retry-after hint and whether a retry
// can help. parse takes the provider's error type and message from the body and
// reports whether it recognized it; an unrecognized body (a proxy's page, say)
// gives its first MaxErrorMessage bytes as the message.
func HTTPError(provider string, resp *http.Response,
	parse func(body []byte) (typ, msg string, ok bool)) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	e := &Error{
		Provider:   provider,
		Status:     resp.StatusCode,
		RetryAfter: RetryAfter(resp.Header, time.Now()),
		Temporary:  TemporaryStatus(resp.StatusCode),
	}
	if typ, msg, ok := parse(raw); ok {
		e.Type, e.Message = typ, msg
		return e
	}
	e.Message = snippet(raw, http.StatusText(resp.StatusCode))
	return e
}

// snippet is the start of a body as valid UTF-8, or fallback when it is empty.
func snippet(raw []byte, fallback string) string {
	s := strings.TrimSpace(string(raw[:min(len(raw), MaxErrorMessage)]))
	if s == "" {
		return fallback
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// RetryAfter reads a server's hint of when to retry: retry-after-ms
// (milliseconds, which the OpenAI API and the official SDKs use), else
// retry-after in seconds or as an HTTP date. It returns 0 when neither is present
// or readable, and at most MaxRetryAfter.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(ms) {
			ms = min(max(ms, 0), float64(MaxRetryAfter.Milliseconds()))
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) {
			return 0
		}
		secs = min(max(secs, 0), MaxRetryAfter.Seconds())
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// LimitBody returns a reader of r that yields at most limit bytes and then fails
// with ErrResponseTooLarge if r goes on: unlike io.LimitReader's quiet EOF, a cut
// cannot pass for a clean end. A body of exactly limit bytes reads whole.
func LimitBody(r io.Reader, limit int64) io.Reader {
	return &limitedBody{r: r, left: limit}
}

type limitedBody struct {
	r    io.Reader
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// At the limit: fine if the body ends here, too large if it goes on.
		var probe [1]byte
		n, err := l.r.Read(probe[:])
		if n > 0 {
			return 0, ErrResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
