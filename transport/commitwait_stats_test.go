package transport_test

import (
	"net/http"
	"testing"
	"time"
)

func TestCommitWaitsShowInStats(t *testing.T) {
	n := startStatsNode(t, 0)
	for _, d := range []time.Duration{2 * time.Millisecond, 500 * time.Microsecond} {
		n.api.ObserveCommitWait(d)
	}
	status, st := getStats(t, n.base, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /stats: %d", status)
	}
	h := st.Latency.CommitWait
	if h.Count != 2 || h.MaxMS != 2 || h.SumMS != 2.5 {
		t.Fatalf("commit_wait %+v, want 2 waits of 2.5ms in all, at most 2ms", h)
	}
	h.check(t, "commit_wait")
	if st.Latency.Relay.Count != 0 {
		t.Errorf("relay count %d: a commit wait is not a relay", st.Latency.Relay.Count)
	}
}
