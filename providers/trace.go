package providers

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// Trace records when the first HTTP request of a provider call was fully written
// upstream (net/http/httptrace's WroteRequest): the moment the server's own work
// on a turn ends and the provider's begins. Retries and fallbacks of the same call
// send later requests; only the first is traced, so the figure is that of the
// first attempt. Its zero value is ready; it is safe for concurrent use.
type Trace struct {
	attempts atomic.Int32 // requests sent under the trace
	wrote    atomic.Int64 // nanoseconds after traceEpoch; 0 until written
}

// traceEpoch anchors the times a Trace keeps as integers, so that they keep the
// monotonic clock reading of time.Now.
var traceEpoch = time.Now()

type traceKey struct{}

// WithTrace returns a context whose provider calls (those sending through Post)
// report to t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// WroteRequest returns when the first request traced was fully written, and false
// when it was not (no request was sent, or writing it failed).
func (t *Trace) WroteRequest() (time.Time, bool) {
	ns := t.wrote.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return traceEpoch.Add(time.Duration(ns)), true
}

// traced returns ctx set to report the request's write to the Trace of ctx, if
// it has one and this is the trace's first request; otherwise ctx unchanged.
func traced(ctx context.Context) context.Context {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	if t == nil || t.attempts.Add(1) != 1 {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				t.wrote.Store(max(int64(time.Since(traceEpoch)), 1))
			}
		},
	})
}
