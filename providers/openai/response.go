package openai

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stated-dev/stated/providers"
)

const (
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10
	// maxErrorMessage bounds the message kept from an error body that is not JSON.
	maxErrorMessage = 512
	// maxRetryAfter bounds a server's retry-after hint.
	maxRetryAfter = 24 * time.Hour
)

// wireError is the error object of an error body or an error chunk. Code is a
// string on the OpenAI API but a number or null on some compatible servers.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// errorType is the error's type, or its code when the type is empty.
func (w *wireError) errorType() string {
	if w.Type != "" {
		return w.Type
	}
	var code string
	if json.Unmarshal(w.Code, &code) == nil {
		return code
	}
	if len(w.Code) > 0 && string(w.Code) != "null" {
		return string(w.Code)
	}
	return ""
}

// httpError reads the error body of a non-200 response, at most maxErrorBody bytes,
// into a *providers.Error.
func httpError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &providers.Error{
		Provider:   providerName,
		Status:     resp.StatusCode,
		RetryAfter: retryAfter(resp.Header, time.Now()),
		Temporary:  providers.TemporaryStatus(resp.StatusCode),
	}
	var body struct {
		Error *wireError `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil &&
		(body.Error.Message != "" || body.Error.errorType() != "") {
		e.Type, e.Message = body.Error.errorType(), body.Error.Message
		return e
	}
	e.Message = snippet(raw, http.StatusText(resp.StatusCode))
	return e
}

// snippet is the start of a body that is not the API's error JSON (a proxy's page,
// say), as valid UTF-8, or fallback when the body is empty.
func snippet(raw []byte, fallback string) string {
	s := strings.TrimSpace(string(raw[:min(len(raw), maxErrorMessage)]))
	if s == "" {
		return fallback
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// retryAfter reads retry-after-ms (milliseconds, which the OpenAI API may send)
// or retry-after (seconds or an HTTP date). It returns 0 when neither is present or
// readable, and at most maxRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(ms) {
			ms = min(max(ms, 0), float64(maxRetryAfter.Milliseconds()))
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
		secs = min(max(secs, 0), maxRetryAfter.Seconds())
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// limitedBody reads at most limit bytes of a response and then fails with
// ErrResponseTooLarge: unlike io.LimitReader's quiet EOF, that cannot pass for a
// clean end.
type limitedBody struct {
	r    io.Reader
	left int64
}

func newLimitedBody(r io.Reader, limit int64) *limitedBody {
	return &limitedBody{r: r, left: limit}
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
