package providers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTraceReportsWhenTheFirstRequestWasWritten(t *testing.T) {
	// The upstream answers a while after reading the request, as a model does, so
	// that the write and the response are told apart.
	answered := make(chan time.Time, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond)
		answered <- time.Now()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	post := func(ctx context.Context) {
		t.Helper()
		resp, err := Post(ctx, srv.Client(), "test", srv.URL, nil, make([]byte, 64<<10))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	var trace Trace
	if _, ok := trace.WroteRequest(); ok {
		t.Fatal("a trace with no request reports a write")
	}
	ctx := WithTrace(context.Background(), &trace)
	before := time.Now()
	post(ctx)
	after := time.Now()
	first, ok := trace.WroteRequest()
	if !ok || first.Before(before) || first.After(after) {
		t.Fatalf("write at %v (reported %t), want between %v and %v", first, ok, before, after)
	}
	if at := <-answered; !first.Before(at) {
		t.Errorf("write reported at %v, not before the upstream answered (%v)", first, at)
	}

	post(ctx) // a retry: not the first attempt, so not traced
	if again, _ := trace.WroteRequest(); !again.Equal(first) {
		t.Errorf("a second request moved the write time from %v to %v", first, again)
	}
}

func TestTraceReportsNoWriteForARequestThatFailed(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now

	var trace Trace
	ctx := WithTrace(context.Background(), &trace)
	if _, err := Post(ctx, http.DefaultClient, "test", url, nil, []byte("{}")); err == nil {
		t.Fatal("a post to a closed server succeeded")
	}
	if at, ok := trace.WroteRequest(); ok {
		t.Errorf("a request never written reports a write at %v", at)
	}
}
