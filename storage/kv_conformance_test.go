package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// openKV returns a new, empty KV; the constructor arranges any cleanup.
type openKV func(t *testing.T) KV

// testKVConformance holds a KV implementation to the KV contract. Every
// implementation runs it: the in-memory one the unit tests use and the durable ones
// the server uses must not differ in anything a caller can see.
func testKVConformance(t *testing.T, open openKV) {
	tests := []struct {
		name string
		run  func(t *testing.T, kv KV)
	}{
		{"a missing key is ErrKeyNotFound", testKVMissing},
		{"a value reads back with the revision its write returned", testKVPutGet},
		{"every write changes the revision", testKVRevisionsChange},
		{"compare-and-put with revision 0 creates only", testKVCreateOnly},
		{"compare-and-put against a stale revision writes nothing", testKVStaleRevision},
		{"a deleted and rewritten key does not take back an old revision",
			testKVNoRevisionReuse},
		{"delete removes the key and a missing key is no error", testKVDelete},
		{"list returns a prefix in key order after a key up to a limit", testKVList},
		{"values are copied in and out", testKVCopies},
		{"keys and values out of limits are refused", testKVLimits},
		{"concurrent compare-and-put increments lose no update", testKVConcurrentCAS},
		{"an empty value is a value", testKVEmptyValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

func TestMemoryKVConformance(t *testing.T) {
	testKVConformance(t, func(t *testing.T) KV { return NewMemoryKV() })
}

func TestBadgerKVConformance(t *testing.T) {
	testKVConformance(t, func(t *testing.T) KV {
		kv, err := openTestBadger(t, t.TempDir()).KV()
		if err != nil {
			t.Fatal(err)
		}
		return kv
	})
}

var kvCtx = context.Background()

func mustPut(t *testing.T, kv KV, key, val string) uint64 {
	t.Helper()
	rev, err := kv.Put(kvCtx, key, []byte(val))
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	if rev == 0 {
		t.Fatalf("Put(%s) returned revision 0", key)
	}
	return rev
}

func assertKV(t *testing.T, kv KV, key, want string, wantRev uint64) {
	t.Helper()
	got, rev, err := kv.Get(kvCtx, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	if string(got) != want || (wantRev != 0 && rev != wantRev) {
		t.Fatalf("Get(%s) = %q rev %d, want %q rev %d", key, got, rev, want, wantRev)
	}
}

func testKVMissing(t *testing.T, kv KV) {
	for _, key := range []string{"absent", "", strings.Repeat("k", MaxKeyLen+1)} {
		if _, _, err := kv.Get(kvCtx, key); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("Get(%.20q) = %v, want ErrKeyNotFound", key, err)
		}
	}
}

func testKVPutGet(t *testing.T, kv KV) {
	rev := mustPut(t, kv, "tenant/acme", `{"name":"acme"}`)
	assertKV(t, kv, "tenant/acme", `{"name":"acme"}`, rev)
}

func testKVRevisionsChange(t *testing.T, kv KV) {
	seen := map[uint64]bool{}
	for i := range 5 {
		rev := mustPut(t, kv, "k", fmt.Sprint(i))
		if seen[rev] {
			t.Fatalf("write %d reused revision %d", i, rev)
		}
		seen[rev] = true
	}
	rev, err := kv.CompareAndPut(kvCtx, "k", []byte("cas"), mustRev(t, kv, "k"))
	if err != nil || seen[rev] {
		t.Fatalf("CompareAndPut = rev %d, %v; want a new revision", rev, err)
	}
	assertKV(t, kv, "k", "cas", rev)
}

func mustRev(t *testing.T, kv KV, key string) uint64 {
	t.Helper()
	_, rev, err := kv.Get(kvCtx, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return rev
}

func testKVCreateOnly(t *testing.T, kv KV) {
	rev, err := kv.CompareAndPut(kvCtx, "k", []byte("first"), 0)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := kv.CompareAndPut(kvCtx, "k", []byte("second"), 0); !errors.Is(err,
		ErrRevisionConflict) {
		t.Fatalf("second create = %v, want ErrRevisionConflict", err)
	}
	assertKV(t, kv, "k", "first", rev)
}

func testKVStaleRevision(t *testing.T, kv KV) {
	old := mustPut(t, kv, "k", "a")
	cur := mustPut(t, kv, "k", "b")
	if _, err := kv.CompareAndPut(kvCtx, "k", []byte("c"), old); !errors.Is(err,
		ErrRevisionConflict) {
		t.Fatalf("stale CompareAndPut = %v, want ErrRevisionConflict", err)
	}
	if _, err := kv.CompareAndPut(kvCtx, "absent", []byte("c"), cur); !errors.Is(err,
		ErrRevisionConflict) {
		t.Fatalf("CompareAndPut of an absent key with a revision = %v", err)
	}
	assertKV(t, kv, "k", "b", cur)
}

func testKVNoRevisionReuse(t *testing.T, kv KV) {
	old := mustPut(t, kv, "k", "a")
	if err := kv.Delete(kvCtx, "k"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, kv, "k", "b")
	if _, err := kv.CompareAndPut(kvCtx, "k", []byte("c"), old); !errors.Is(err,
		ErrRevisionConflict) {
		t.Fatalf("CompareAndPut with the revision of a deleted value = %v", err)
	}
	assertKV(t, kv, "k", "b", 0)
}

func testKVDelete(t *testing.T, kv KV) {
	mustPut(t, kv, "k", "a")
	mustPut(t, kv, "k2", "b")
	for _, key := range []string{"k", "k", "never", ""} {
		if err := kv.Delete(kvCtx, key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
	}
	if _, _, err := kv.Get(kvCtx, "k"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	assertKV(t, kv, "k2", "b", 0)
	if _, err := kv.CompareAndPut(kvCtx, "k", []byte("again"), 0); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
}

func testKVList(t *testing.T, kv KV) {
	for _, key := range []string{"b/2", "a/1", "b/10", "b/1", "c/1", "b", "b/1/x"} {
		mustPut(t, kv, key, "v-"+key)
	}
	tests := []struct {
		name          string
		prefix, after string
		limit         int
		want          []string
	}{
		{"a prefix in key order", "b/", "", 0, []string{"b/1", "b/1/x", "b/10", "b/2"}},
		{"after skips up to and including the key", "b/", "b/1/x", 0,
			[]string{"b/10", "b/2"}},
		{"after need not exist", "b/", "b/15", 0, []string{"b/2"}},
		{"after before the prefix starts at the prefix", "b/", "a", 0,
			[]string{"b/1", "b/1/x", "b/10", "b/2"}},
		{"after past the prefix lists nothing", "b/", "c", 0, nil},
		{"a limit stops the list", "b/", "", 2, []string{"b/1", "b/1/x"}},
		{"a negative limit lists everything", "b/", "", -1,
			[]string{"b/1", "b/1/x", "b/10", "b/2"}},
		{"an empty prefix lists every key", "", "b/2", 0, []string{"c/1"}},
		{"a prefix nothing has lists nothing", "d/", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kv.List(kvCtx, tt.prefix, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, e := range got {
				keys = append(keys, e.Key)
				if string(e.Value) != "v-"+e.Key || e.Revision == 0 {
					t.Fatalf("entry %s = %q rev %d", e.Key, e.Value, e.Revision)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.want) {
				t.Fatalf("List(%q, %q, %d) = %v, want %v", tt.prefix, tt.after, tt.limit,
					keys, tt.want)
			}
		})
	}
}

func testKVCopies(t *testing.T, kv KV) {
	val := []byte("value")
	mustPutBytes(t, kv, "k", val)
	val[0] = 'X'
	got, _, _ := kv.Get(kvCtx, "k")
	got[0] = 'Y'
	list, _ := kv.List(kvCtx, "k", "", 0)
	list[0].Value[1] = 'Z'
	assertKV(t, kv, "k", "value", 0)
}

func mustPutBytes(t *testing.T, kv KV, key string, val []byte) {
	t.Helper()
	if _, err := kv.Put(kvCtx, key, val); err != nil {
		t.Fatal(err)
	}
}

func testKVLimits(t *testing.T, kv KV) {
	long := strings.Repeat("k", MaxKeyLen+1)
	big := bytes.Repeat([]byte{1}, MaxValueBytes+1)
	if _, err := kv.Put(kvCtx, "", []byte("v")); err == nil {
		t.Error("Put with an empty key succeeded")
	}
	if _, err := kv.Put(kvCtx, long, []byte("v")); err == nil {
		t.Error("Put with a key over MaxKeyLen succeeded")
	}
	if _, err := kv.Put(kvCtx, "k", big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Put of a value over MaxValueBytes = %v, want ErrTooLarge", err)
	}
	if _, err := kv.CompareAndPut(kvCtx, "k", big, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("CompareAndPut of a value over MaxValueBytes = %v, want ErrTooLarge", err)
	}
	if _, err := kv.Put(kvCtx, strings.Repeat("k", MaxKeyLen),
		bytes.Repeat([]byte{1}, MaxValueBytes)); err != nil {
		t.Errorf("Put at both limits: %v", err)
	}
	if _, _, err := kv.Get(kvCtx, "k"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("a refused write left a value: %v", err)
	}
}

func testKVConcurrentCAS(t *testing.T, kv KV) {
	const workers, each = 8, 25
	mustPut(t, kv, "counter", "0")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := increment(kv, "counter"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	assertKV(t, kv, "counter", fmt.Sprint(workers*each), 0)
}

// increment adds one to the number stored at key, retrying lost races.
func increment(kv KV, key string) error {
	for {
		val, rev, err := kv.Get(kvCtx, key)
		if err != nil {
			return err
		}
		var n int
		fmt.Sscan(string(val), &n)
		_, err = kv.CompareAndPut(kvCtx, key, []byte(fmt.Sprint(n+1)), rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrRevisionConflict) {
			return err
		}
	}
}

func testKVEmptyValue(t *testing.T, kv KV) {
	mustPutBytes(t, kv, "empty", nil)
	got, rev, err := kv.Get(kvCtx, "empty")
	if err != nil || len(got) != 0 || rev == 0 {
		t.Fatalf("Get of an empty value = %q rev %d, %v", got, rev, err)
	}
}
