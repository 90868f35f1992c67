package anthropic

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
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && (body.Error.Type != "" || body.Error.Message != "") {
		e.Type, e.Message = body.Error.Type, body.Error.Message
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

// retryAfter reads a retry-after header given in seconds or as an HTTP date. It
// returns 0 when the header is absent or unreadable, and at most maxRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
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
