package providers_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

func TestRetrierRetriesWhatARetryCanHelp(t *testing.T) {
	tests := []struct {
		name       string
		script     []http.HandlerFunc
		wantCalls  int
		wantDelays []time.Duration
		wantErr    func(error) bool // nil: the answer must succeed
	}{
		{
			name: "429 with retry-after 1 then 200 waits the second asked for",
			script: []http.HandlerFunc{
				anthropicError(429, "rate_limit_error", "retry-after", "1"), aAnswer},
			wantCalls:  2,
			wantDelays: []time.Duration{time.Second},
		},
		{
			name: "529 twice then 200 backs off exponentially",
			script: []http.HandlerFunc{anthropicError(529, "overloaded_error"),
				anthropicError(529, "overloaded_error"), aAnswer},
			wantCalls:  3,
			wantDelays: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
		},
		{
			name: "an overload event before the first delta",
			script: []http.HandlerFunc{stream(aStart, sse("error", `{"type":"error",`+
				`"error":{"type":"overloaded_error","message":"Overloaded"}}`)), aAnswer},
			wantCalls:  2,
			wantDelays: []time.Duration{50 * time.Millisecond},
		},
		{
			name:       "a stream cut before the first delta",
			script:     []http.HandlerFunc{stream(aStart), aAnswer},
			wantCalls:  2,
			wantDelays: []time.Duration{50 * time.Millisecond},
		},
		{
			name:      "400 is not retried",
			script:    []http.HandlerFunc{anthropicError(400, "invalid_request_error"), aAnswer},
			wantCalls: 1,
			wantErr:   statusIs(400),
		},
		{
			name:      "a stream cut after a delta is not retried",
			script:    []http.HandlerFunc{stream(aStart, aDelta), aAnswer},
			wantCalls: 1,
			wantErr:   func(err error) bool { return errors.Is(err, providers.ErrStreamCut) },
		},
		{
			name: "a retry-after longer than the policy allows is not waited for",
			script: []http.HandlerFunc{
				anthropicError(429, "rate_limit_error", "retry-after", "3600"), aAnswer},
			wantCalls: 1,
			wantErr:   statusIs(429),
		},
		{
			name:       "the attempts are bounded",
			script:     []http.HandlerFunc{anthropicError(500, "api_error")},
			wantCalls:  3,
			wantDelays: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
			wantErr:    statusIs(500),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startScripted(t, tc.script...)
			var clock fakeClock
			var logged bytes.Buffer
			r := providers.NewRetrier(srv.anthropic(), policy(&clock, &logged))
			var text deltaText
			resp, err := r.Complete(context.Background(), hello("claude-sonnet-4-5"), text.add)

			if tc.wantErr == nil && (err != nil || resp.Text != "Hi" || text.String() != "Hi") {
				t.Fatalf("got %+v, %v, deltas %q; want the answer Hi", resp, err, text.String())
			}
			if tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("err %v", err)
			}
			if n := srv.count(); n != tc.wantCalls {
				t.Errorf("%d requests, want %d", n, tc.wantCalls)
			}
			if got := clock.slept(); !reflect.DeepEqual(got, tc.wantDelays) {
				t.Errorf("slept %v, want %v", got, tc.wantDelays)
			}
			lines := strings.Count(logged.String(), "provider request retried")
			if lines != len(tc.wantDelays) {
				t.Errorf("%d retry log lines, want %d:\n%s", lines, len(tc.wantDelays),
					logged.String())
			}
		})
	}
}

func TestRetrierLogsProviderModelStatusAndDelay(t *testing.T) {
	srv := startScripted(t, anthropicError(429, "rate_limit_error", "retry-after", "2"), aAnswer)
	var clock fakeClock
	var logged bytes.Buffer
	r := providers.NewRetrier(srv.anthropic(), policy(&clock, &logged))
	if _, err := r.Complete(context.Background(), hello("claude-haiku-4-5"), nil); err != nil {
		t.Fatal(err)
	}
	line := logged.String()
	for _, want := range []string{"level=INFO", `msg="provider request retried"`,
		"provider=anthropic", "model=claude-haiku-4-5", "status=429",
		"error_type=rate_limit_error", "attempt=2", "delay=2s"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}

func TestRetrierBackoffDoublesUpToTheMaximumWithJitter(t *testing.T) {
	srv := startScripted(t, anthropicError(529, "overloaded_error"))
	for _, jitter := range []float64{0, 0.999} {
		var clock fakeClock
		var logged bytes.Buffer
		p := policy(&clock, &logged)
		p.Attempts, p.MaxDelay = 6, time.Second
		p.Jitter = func() float64 { return jitter }
		_, err := providers.NewRetrier(srv.anthropic(), p).Complete(context.Background(),
			hello("claude-sonnet-4-5"), nil)
		if !statusIs(529)(err) {
			t.Fatalf("err %v", err)
		}
		backoffs := []time.Duration{100, 200, 400, 800, 1000}
		got := clock.slept()
		if len(got) != len(backoffs) {
			t.Fatalf("jitter %v: slept %v, want %d delays", jitter, got, len(backoffs))
		}
		for i, b := range backoffs {
			b *= time.Millisecond
			if got[i] < b/2 || got[i] > b {
				t.Errorf("jitter %v: delay %d is %v, want %v..%v", jitter, i, got[i], b/2, b)
			}
		}
	}
}

func TestRetrierRetriesAConnectionThatIsRefused(t *testing.T) {
	srv := startScripted(t, aAnswer)
	client := srv.anthropic()
	srv.Close()
	var clock fakeClock
	var logged bytes.Buffer
	_, err := providers.NewRetrier(client, policy(&clock, &logged)).Complete(
		context.Background(), hello("claude-sonnet-4-5"), nil)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Type != providers.TypeConnection {
		t.Fatalf("err %v, want a connection error", err)
	}
	if n := len(clock.slept()); n != 2 {
		t.Fatalf("%d retries, want 2", n)
	}
}

func TestRetrierTimesOutAnAttemptThatDoesNotStartAnswering(t *testing.T) {
	srv := startScripted(t, stall, aAnswer)
	var clock fakeClock
	var logged bytes.Buffer
	p := policy(&clock, &logged)
	p.AttemptTimeout = 100 * time.Millisecond
	resp, err := providers.NewRetrier(srv.anthropic(), p).Complete(context.Background(),
		hello("claude-sonnet-4-5"), nil)
	if err != nil || resp.Text != "Hi" {
		t.Fatalf("got %+v, %v; want the second attempt's answer", resp, err)
	}
	if n := srv.count(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestRetrierReportsAnAttemptTimeoutAsATemporaryDeadline(t *testing.T) {
	srv := startScripted(t, stall)
	var clock fakeClock
	var logged bytes.Buffer
	p := policy(&clock, &logged)
	p.Attempts, p.AttemptTimeout = 2, 50*time.Millisecond
	_, err := providers.NewRetrier(srv.anthropic(), p).Complete(context.Background(),
		hello("claude-sonnet-4-5"), nil)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Type != providers.TypeAttemptTimeout || !pe.Temporary {
		t.Fatalf("err %v, want a temporary attempt timeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v does not match context.DeadlineExceeded", err)
	}
	if n := srv.count(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestRetrierLetsAnAnswerThatStartedRunPastTheAttemptTimeout(t *testing.T) {
	srv := startScripted(t, stream(aStart, aDelta, "<wait>", aEnd))
	var clock fakeClock
	var logged bytes.Buffer
	p := policy(&clock, &logged)
	p.AttemptTimeout = 100 * time.Millisecond
	resp, err := providers.NewRetrier(srv.anthropic(), p).Complete(context.Background(),
		hello("claude-sonnet-4-5"), nil)
	if err != nil || resp.Text != "Hi" || srv.count() != 1 {
		t.Fatalf("got %+v, %v after %d requests; want one whole answer", resp, err, srv.count())
	}
}

func TestRetrierStopsWaitingWhenTheContextEnds(t *testing.T) {
	srv := startScripted(t, anthropicError(529, "overloaded_error", "retry-after", "60"))
	p := providers.RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := providers.NewRetrier(srv.anthropic(), p).Complete(ctx, hello("claude-x"), nil)
	if !statusIs(529)(err) {
		t.Fatalf("err %v, want the 529", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("returned after %v, long after the context ended", waited)
	}
	if n := srv.count(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestRetryableSaysWhichErrorsARetryCanHelp(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"an overload", &providers.Error{Status: 529, Temporary: true}, true},
		{"a refused request", &providers.Error{Status: 400}, false},
		{"a cut stream", providers.ErrStreamCut, true},
		{"a malformed stream", providers.ErrBadStream, false},
		{"a cancelled context", context.Canceled, false},
		{"nothing", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := providers.Retryable(tc.err); got != tc.want {
				t.Fatalf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func statusIs(code int) func(error) bool {
	return func(err error) bool {
		var pe *providers.Error
		return errors.As(err, &pe) && pe.Status == code
	}
}
