package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stated-dev/stated/internal/natstest"
)

// openTestJetStream opens a store on the servers of c through a connection of
// its own.
func openTestJetStream(t *testing.T, c *natstest.Cluster, opts JetStreamOptions) *JetStream {
	t.Helper()
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := OpenJetStream(ctx, js, opts)
	if err != nil {
		t.Fatalf("OpenJetStream: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestJetStreamConformance(t *testing.T) {
	natstest.Binary(t)
	testConformance(t, func(t *testing.T) Store {
		return openTestJetStream(t, natstest.StartServer(t), JetStreamOptions{})
	})
}

// TestJetStreamConformanceReplicated runs the suite against three replicas on
// three servers, where the server reports conflicts differently and batches
// commit through the stream's consensus group. Each case gets a new stream.
func TestJetStreamConformanceReplicated(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	testConformance(t, func(t *testing.T) Store {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := js.DeleteStream(ctx, DefaultJetStreamStream)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("DeleteStream: %v", err)
		}
		return openTestJetStream(t, c, JetStreamOptions{Replicas: 3})
	})
}

func TestOpenJetStreamRefusesBadOptions(t *testing.T) {
	c := natstest.StartServer(t)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts JetStreamOptions
	}{
		{"negative replicas", JetStreamOptions{Replicas: -1}},
		{"more replicas than JetStream allows",
			JetStreamOptions{Replicas: MaxJetStreamReplicas + 1}},
		{"a stream name with a dot", JetStreamOptions{Stream: "stated.log"}},
		{"a stream name over the limit", JetStreamOptions{Stream: strings.Repeat("S", 65)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenJetStream(context.Background(), js, tt.opts); err == nil {
				t.Fatalf("OpenJetStream(%+v) succeeded", tt.opts)
			}
		})
	}
	info, err := js.AccountInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Streams != 0 {
		t.Fatalf("refused options left %d streams behind", info.Streams)
	}
}

func TestJetStreamFenceRefusesBadOwners(t *testing.T) {
	s := openTestJetStream(t, natstest.StartServer(t), JetStreamOptions{})
	mustCreate(t, s, Meta{ID: "s1"})
	tests := []struct {
		name     string
		owner    string
		revision uint64
	}{
		{"an empty owner", "", 1},
		{"an owner over the limit", strings.Repeat("n", MaxOwnerLen+1), 1},
		{"an owner with a space", "node 1", 1},
		{"an owner with a line break", "n1\r\nStated-Kind: meta", 1},
		{"revision zero", "n1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Fence(context.Background(), "s1", tt.owner, tt.revision)
			if !errors.Is(err, ErrInvalidOwner) {
				t.Fatalf("Fence = %v, want ErrInvalidOwner", err)
			}
		})
	}
	if err := s.Fence(context.Background(), "unknown", "n1", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Fence of an unknown session = %v, want ErrNotFound", err)
	}
	assertLog(t, s, "s1", 0)
}

// TestJetStreamCluster runs on three servers with three replicas: fencing
// between two nodes' stores, then the loss of a server.
func TestJetStreamCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	a := openTestJetStream(t, c, JetStreamOptions{Replicas: 3})
	b := openTestJetStream(t, c, JetStreamOptions{Replicas: 3})

	t.Run("fencing", func(t *testing.T) { testFencing(t, a, b) })
	t.Run("records survive killing a server of three", func(t *testing.T) {
		testKillOneOfThree(t, c, a)
	})
}

// testFencing holds two stores, as two nodes, to the fencing rules.
func testFencing(t *testing.T, a, b *JetStream) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, id string)
	}{
		{"the owner of the latest fence writes and others read it", func(t *testing.T, id string) {
			mustFence(t, a, id, "a", 5)
			mustAppend(t, a, id, 1, 3)
			assertLog(t, b, id, 3)
		}},
		{"a write by an older owner is rejected after a newer fence",
			func(t *testing.T, id string) {
				mustFence(t, a, id, "a", 5)
				mustAppend(t, a, id, 1, 1)
				mustFence(t, b, id, "b", 9)
				assertFenced(t, a.Append(ctx, id, seqRecords(id, 2, 1)))
				mustAppend(t, b, id, 2, 1)
				assertFenced(t, a.Append(ctx, id, seqRecords(id, 3, 1)))
				assertLog(t, a, id, 2)
			}},
		{"a writer whose view predates the fence is rejected by the server",
			func(t *testing.T, id string) {
				mustFence(t, a, id, "a", 5)
				view, err := a.last(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				mustFence(t, b, id, "b", 9)
				w := logWriter{owner: "a", revision: 5}
				assertFenced(t, a.appendAfter(ctx, id, w, view, seqRecords(id, 1, 1)))
				assertFenced(t, a.appendAfter(ctx, id, w, view, seqRecords(id, 1, 3)))
				assertLog(t, b, id, 0)
			}},
		{"a fence by an older owner is refused", func(t *testing.T, id string) {
			mustFence(t, b, id, "b", 9)
			assertFenced(t, a.Fence(ctx, id, "a", 5))
			assertFenced(t, a.Fence(ctx, id, "a", 9))
		}},
		{"a writer without ownership is rejected once the log is fenced",
			func(t *testing.T, id string) {
				mustAppend(t, a, id, 1, 1)
				mustFence(t, b, id, "b", 9)
				assertFenced(t, a.Append(ctx, id, seqRecords(id, 2, 1)))
				mustAppend(t, b, id, 2, 1)
				b.Disown(id)
				assertFenced(t, b.Append(ctx, id, seqRecords(id, 3, 1)))
				assertLog(t, a, id, 2)
			}},
		{"fencing again with the same ownership writes nothing", func(t *testing.T, id string) {
			mustFence(t, a, id, "a", 5)
			first, err := a.last(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			mustFence(t, a, id, "a", 5)
			again, err := a.last(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if first.kind != msgFence || again.streamSeq != first.streamSeq {
				t.Fatalf("last message %+v after the second fence, want %+v", again, first)
			}
		}},
		{"fences between records leave the log whole", func(t *testing.T, id string) {
			mustAppend(t, a, id, 1, 2)
			mustFence(t, a, id, "a", 5)
			mustAppend(t, a, id, 3, 2)
			mustFence(t, b, id, "b", 9)
			mustAppend(t, b, id, 5, 3)
			assertLog(t, a, id, 7)
			recs, err := b.Read(ctx, id, 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 || recs[0].Seq != 3 || recs[2].Seq != 5 {
				t.Fatalf("Read(after 2, limit 3) = %d records from %v", len(recs), recs)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("fencing-%d", i)
			mustCreate(t, a, Meta{ID: id})
			tt.run(t, id)
		})
	}
}

// testKillOneOfThree kills the stream's leader and checks that every record is
// still there and that appends go on.
func testKillOneOfThree(t *testing.T, c *natstest.Cluster, s *JetStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const id = "survivor"
	mustCreate(t, s, Meta{ID: id, Tenant: "acme"})
	mustAppend(t, s, id, 1, 20)
	mustAppend(t, s, id, 21, 1)

	info, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Index(info.Cluster.Leader)
	if leader < 0 {
		t.Fatalf("stream leader %q is not one of the servers", info.Cluster.Leader)
	}
	c.Kill(leader)

	readEventually(ctx, t, s, id, 21)
	appendEventually(ctx, t, s, id, seqRecords(id, 22, 5))
	mustAppend(t, s, id, 27, 1)
	assertLog(t, s, id, 27)
	meta, err := s.Meta(ctx, id)
	if err != nil || meta.Tenant != "acme" {
		t.Fatalf("Meta = %+v, %v; want tenant acme", meta, err)
	}
}

// appendEventually retries an append while the stream elects a new leader. Each
// attempt has its own timeout, since a stream without a leader does not answer.
// An attempt whose answer was lost may have landed; the log then already ends
// with recs.
func appendEventually(ctx context.Context, t *testing.T, s *JetStream, id string,
	recs []Record) {
	t.Helper()
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Append(attempt, id, recs)
		cancel()
		if err == nil {
			return
		}
		if errors.Is(err, ErrSeqConflict) {
			if last, lerr := s.LastSeq(ctx, id); lerr == nil && last == recs[len(recs)-1].Seq {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("append after losing a server: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readEventually reads the session's log until the read succeeds, while the
// cluster elects new leaders, and checks it holds n records.
func readEventually(ctx context.Context, t *testing.T, s *JetStream, id string, n int) {
	t.Helper()
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		recs, err := s.Read(attempt, id, 0, 0)
		cancel()
		if err == nil {
			if len(recs) != n {
				t.Fatalf("log of %q has %d records after losing a server, want %d", id,
					len(recs), n)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("read after losing a server: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustFence(t *testing.T, s *JetStream, id, owner string, revision uint64) {
	t.Helper()
	if err := s.Fence(context.Background(), id, owner, revision); err != nil {
		t.Fatalf("Fence(%q, %s, %d): %v", id, owner, revision, err)
	}
}

func assertFenced(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("got %v, want ErrFenced", err)
	}
}
