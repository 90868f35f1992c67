package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

func TestAddedTimeEndsWhenTheFirstRequestWasWritten(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	var observed []time.Duration
	m := &Manager{cfg: Config{ObserveAdded: func(d time.Duration) {
		observed = append(observed, d)
	}}}
	// sent is an hour late on purpose: a figure that ended at sent would show it.
	received := time.Now()
	sent := received.Add(time.Hour)

	written := &providers.Trace{}
	resp, err := providers.Post(providers.WithTrace(context.Background(), written),
		upstream.Client(), "test", upstream.URL, nil, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := m.observeAdded(received, sent, written); d <= 0 || d > time.Minute {
		t.Errorf("added %v with the request written, want the short time to the write", d)
	}
	if d := m.observeAdded(received, sent, &providers.Trace{}); d != time.Hour {
		t.Errorf("added %v with no write reported, want the time to the call (1h)", d)
	}
	if len(observed) != 2 || observed[1] != time.Hour {
		t.Errorf("the hook saw %v, want both figures", observed)
	}
}
