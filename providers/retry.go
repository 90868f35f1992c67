package providers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// RetryPolicy says when and how often a Retrier retries. DefaultRetryPolicy gives
// the values the daemon starts with.
type RetryPolicy struct {
	// Attempts is the most attempts one request gets, the first included. 1 or
	// less: no retry.
	Attempts int
	// BaseDelay is the backoff before the second attempt; each later one doubles,
	// up to MaxDelay. The delay actually waited is drawn between half the backoff
	// and the whole of it (jitter), so that clients refused together do not
	// return together.
	BaseDelay time.Duration
	// MaxDelay bounds one backoff, and the retry-after hint a retry may wait for:
	// when the provider asks to wait longer, the request is not retried and its
	// error is returned (a fallback model may then answer). 0: no bound on the
	// backoff and no retry that honours a hint.
	MaxDelay time.Duration
	// AttemptTimeout bounds how long one attempt may take before its first delta.
	// An attempt that sends nothing in that time is cancelled and retried; once a
	// delta has arrived the attempt runs as long as the caller's ctx allows. 0: no
	// bound.
	AttemptTimeout time.Duration
	// Logger receives one info line per retry. Nil: no logging.
	Logger *slog.Logger
	// Sleep waits d, or until ctx ends with ctx's error. Nil: a timer. Tests pass
	// a fake clock here.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1) that places a delay in its range. Nil:
	// math/rand/v2.
	Jitter func() float64
}

// DefaultRetryPolicy is three attempts, backoff from 500ms up to 30s, and two
// minutes for an attempt to start answering.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Attempts:       3,
		BaseDelay:      500 * time.Millisecond,
		MaxDelay:       30 * time.Second,
		AttemptTimeout: 2 * time.Minute,
	}
}

// Retrier is a Provider that retries a request its provider failed before
// anything of the answer streamed, when the failure is one a retry can help
// (Retryable). It never retries once a delta has been passed on: the caller has
// shown part of an answer, and a second answer would not continue it. Safe for
// concurrent use.
type Retrier struct {
	next   Provider
	policy RetryPolicy
	log    *slog.Logger
}

var (
	_ Provider     = (*Retrier)(nil)
	_ ModelChecker = (*Retrier)(nil)
)

// NewRetrier returns a Retrier of next with policy p.
func NewRetrier(next Provider, p RetryPolicy) *Retrier {
	r := &Retrier{next: next, policy: p, log: p.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.policy.Sleep == nil {
		r.policy.Sleep = sleep
	}
	if r.policy.Jitter == nil {
		r.policy.Jitter = rand.Float64
	}
	return r
}

// Name is the name of the provider it retries.
func (r *Retrier) Name() string { return r.next.Name() }

// Serves passes the question to the provider it retries; true if that one does
// not say.
func (r *Retrier) Serves(model string) bool { return serves(r.next, model) }

// Complete calls the provider, and again after a backoff while the call fails
// before its first delta with a Retryable error, up to Attempts calls. It returns
// the last call's answer and error, as Provider documents. An attempt that sends
// nothing within AttemptTimeout fails with a temporary *Error of Type
// TypeAttemptTimeout that also matches context.DeadlineExceeded.
func (r *Retrier) Complete(ctx context.Context, req *Request,
	onDelta func(Delta)) (*Response, error) {
	for attempt := 1; ; attempt++ {
		resp, streamed, err := r.attempt(ctx, req, onDelta)
		if err == nil || streamed || attempt >= r.policy.Attempts || ctx.Err() != nil ||
			!Retryable(err) {
			return resp, err
		}
		delay, ok := r.delay(attempt, err)
		if !ok {
			return resp, err
		}
		r.logRetry(req, err, attempt, delay)
		if r.policy.Sleep(ctx, delay) != nil {
			return resp, err
		}
	}
}

// attempt makes one call, cancelled if it sends no delta within AttemptTimeout,
// and reports whether a delta was passed on.
func (r *Retrier) attempt(ctx context.Context, req *Request,
	onDelta func(Delta)) (resp *Response, streamed bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var timer *time.Timer
	if d := r.policy.AttemptTimeout; d > 0 {
		timer = time.AfterFunc(d, func() { cancel(errAttemptTimeout) })
		defer timer.Stop()
	}

	resp, err = r.next.Complete(actx, req, func(d Delta) {
		if !streamed {
			streamed = true
			if timer != nil {
				timer.Stop()
			}
		}
		if onDelta != nil {
			onDelta(d)
		}
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
		err = fmt.Errorf("%w: %w", &Error{
			Provider:  r.next.Name(),
			Type:      TypeAttemptTimeout,
			Message:   fmt.Sprintf("no answer within %v", r.policy.AttemptTimeout),
			Temporary: true,
		}, context.DeadlineExceeded)
	}
	return resp, streamed, err
}

// errAttemptTimeout is the cancel cause of an attempt that ran out of time.
var errAttemptTimeout = errors.New("providers: attempt timed out")

// delay is how long to wait before attempt+1: the jittered backoff, or the
// provider's retry-after hint when that is longer. ok is false when the hint is
// longer than MaxDelay allows.
func (r *Retrier) delay(attempt int, err error) (d time.Duration, ok bool) {
	backoff := r.policy.BaseDelay
	for i := 1; i < attempt && (r.policy.MaxDelay <= 0 || backoff < r.policy.MaxDelay); i++ {
		backoff *= 2
	}
	if r.policy.MaxDelay > 0 {
		backoff = min(backoff, r.policy.MaxDelay)
	}
	half := backoff / 2
	d = half + time.Duration(r.policy.Jitter()*float64(backoff-half))

	var pe *Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		if pe.RetryAfter > r.policy.MaxDelay {
			return 0, false
		}
		d = max(d, pe.RetryAfter)
	}
	return d, true
}

func (r *Retrier) logRetry(req *Request, err error, attempt int, delay time.Duration) {
	provider, status, typ := r.next.Name(), 0, ""
	var pe *Error
	if errors.As(err, &pe) {
		provider, status, typ = pe.Provider, pe.Status, pe.Type
	}
	r.log.Info("provider request retried", "provider", provider, "model", req.Model,
		"status", status, "error_type", typ, "attempt", attempt+1, "delay", delay)
}

// Retryable reports whether the same request may succeed if sent again: a
// *Error marked Temporary (429, 5xx, 529, overload events, connection errors,
// attempt timeouts) or a stream that broke off (ErrStreamCut). A cancelled
// context, a request the provider refused and a malformed stream are not.
func Retryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Temporary
	}
	return errors.Is(err, ErrStreamCut)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serves asks p whether it serves model, if p knows; true otherwise.
func serves(p Provider, model string) bool {
	if mc, ok := p.(ModelChecker); ok {
		return mc.Serves(model)
	}
	return true
}
