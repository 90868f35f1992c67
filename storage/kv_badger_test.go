package storage

import (
	"context"
	"errors"
	"testing"
)

func TestBadgerKVSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := OpenBadger(DefaultBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.KV()
	if err != nil {
		t.Fatal(err)
	}
	rev := mustPut(t, kv, "tenant/acme", "kept")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kv.Get(ctx, "tenant/acme"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}

	again := openTestBadger(t, dir)
	kv2, err := again.KV()
	if err != nil {
		t.Fatal(err)
	}
	assertKV(t, kv2, "tenant/acme", "kept", rev)
	if next := mustPut(t, kv2, "other", "x"); next <= rev {
		t.Fatalf("revision after reopen %d, want above %d: revisions must not repeat", next, rev)
	}
}

func TestBadgerKVBatchIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	kv, err := openTestBadger(t, t.TempDir()).KV()
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, kv, "pending/1", "x")
	err = kv.Apply(ctx, KVBatch{
		Create: []KVEntry{{Key: "ledger/1", Value: []byte("a")}},
		Put:    []KVEntry{{Key: "ledger/2", Value: []byte("b")}},
		Delete: []string{"pending/1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	assertKV(t, kv, "ledger/1", "a", 0)
	assertKV(t, kv, "ledger/2", "b", 0)
	if _, _, err := kv.Get(ctx, "pending/1"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("batch left the deleted key: %v", err)
	}

	err = kv.Apply(ctx, KVBatch{Put: []KVEntry{{Key: "ledger/3", Value: []byte("c")},
		{Key: ""}}})
	if err == nil {
		t.Fatal("a batch with an empty key succeeded")
	}
	err = kv.Apply(ctx, KVBatch{
		Create: []KVEntry{{Key: "ledger/1", Value: []byte("again")}},
		Put:    []KVEntry{{Key: "ledger/3", Value: []byte("c")}},
	})
	if !errors.Is(err, ErrRevisionConflict) {
		t.Fatalf("a batch creating an existing key = %v, want ErrRevisionConflict", err)
	}
	for _, key := range []string{"ledger/3"} {
		if _, _, err := kv.Get(ctx, key); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("a refused batch wrote %s: %v", key, err)
		}
	}
	assertKV(t, kv, "ledger/1", "a", 0)
}

func TestBadgerKVKeepsOutOfTheSessions(t *testing.T) {
	ctx := context.Background()
	b := openTestBadger(t, t.TempDir())
	kv, err := b.KV()
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, Meta{ID: "s1", Tenant: "acme"})
	mustAppend(t, b, "s1", 1, 3)
	mustPut(t, kv, "m", "not a meta")
	all, err := kv.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Key != "m" {
		t.Fatalf("KV lists %d entries (%v), want only its own", len(all), all)
	}
	assertLog(t, b, "s1", 3)
}
