package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestStartServerServesJetStream(t *testing.T) {
	c := StartServer(t)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("AccountInfo: %v", err)
	}
	if got := c.Connect(t).MaxPayload(); got != MaxPayload {
		t.Errorf("max payload = %d, want %d", got, MaxPayload)
	}
}

// TestClusterSurvivesKillAndRestart holds the helpers to what the store tests
// rely on: a replicated stream keeps taking writes with one server killed, and
// a restarted server rejoins and catches up.
func TestClusterSurvivesKillAndRestart(t *testing.T) {
	c := StartCluster(t, 3)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "T", Subjects: []string{"t.>"}, Replicas: 3,
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("one")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Index(info.Cluster.Leader)
	if leader < 0 {
		t.Fatalf("stream leader %q is not one of the servers", info.Cluster.Leader)
	}
	start := time.Now()
	c.Kill(leader)
	publishEventually(ctx, t, js, "t.a", "two")
	t.Logf("killed the leader: writes resumed after %s", time.Since(start))

	start = time.Now()
	c.Restart(leader)
	t.Logf("restart took %s", time.Since(start))
	start = time.Now()
	c.Stop((leader + 1) % 3)
	publishEventually(ctx, t, js, "t.a", "three")
	c.Restart((leader + 1) % 3)
	t.Logf("stop, write, restart took %s", time.Since(start))

	info, err = s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages, want 3", info.State.Msgs)
	}
}

// publishEventually publishes until the stream takes the message or ctx ends.
// Each attempt has its own timeout: a stream without a leader does not answer.
// The message ID makes a retry of a publish that landed unanswered a no-op.
func publishEventually(ctx context.Context, t *testing.T, js jetstream.JetStream,
	subj, data string) {
	t.Helper()
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.Publish(attempt, subj, []byte(data), jetstream.WithMsgID(data))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish %q: %v", data, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
