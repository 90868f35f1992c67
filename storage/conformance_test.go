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

// openStore returns a new, empty store that the test may close; the constructor
// arranges any cleanup.
type openStore func(t *testing.T) Store

// testConformance holds a Store implementation to the Store contract.
func testConformance(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"a created session returns its meta and an empty log", testCreateAndMeta},
		{"a second create with the same ID fails with ErrExists", testCreateExists},
		{"every method on an unknown session returns ErrNotFound", testNotFound},
		{"records read back in seq order", testAppendReadOrder},
		{"read honors after and limit", testReadAfterLimit},
		{"appends that do not continue the log write nothing", testSeqConflicts},
		{"data is copied in and out", testDataCopied},
		{"input out of limits is refused with a typed error", testValidation},
		{"sessions whose IDs share a prefix stay apart", testPrefixIDs},
		{"concurrent appenders to one session leave no gap or duplicate",
			testConcurrentOneSession},
		{"concurrent appenders to many sessions all land", testConcurrentManySessions},
		{"a canceled context writes nothing", testCanceledContext},
		{"a closed store refuses every call", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

func testCreateAndMeta(t *testing.T, s Store) {
	ctx := context.Background()
	metas := []Meta{
		{ID: "s1", Tenant: "acme", Epoch: 7, Data: []byte(`{"model":"gpt-4.1"}`)},
		{ID: "s2", Tenant: "", Epoch: 0, Data: nil},
		{ID: strings.Repeat("x", MaxIDLen), Tenant: strings.Repeat("t", MaxTenantLen),
			Epoch: 1 << 63, Data: bytes.Repeat([]byte{0}, 5000)},
	}
	for _, want := range metas {
		if err := s.Create(ctx, want); err != nil {
			t.Fatalf("Create(%.10q): %v", want.ID, err)
		}
		got, err := s.Meta(ctx, want.ID)
		if err != nil {
			t.Fatalf("Meta(%.10q): %v", want.ID, err)
		}
		assertMeta(t, got, want)
		if last := lastSeq(t, s, want.ID); last != 0 {
			t.Errorf("LastSeq of a new session = %d, want 0", last)
		}
		if recs := readAll(t, s, want.ID); len(recs) != 0 {
			t.Errorf("new session has %d records, want none", len(recs))
		}
	}
}

func testCreateExists(t *testing.T, s Store) {
	ctx := context.Background()
	first := Meta{ID: "s1", Tenant: "acme", Epoch: 1, Data: []byte("first")}
	mustCreate(t, s, first)
	err := s.Create(ctx, Meta{ID: "s1", Tenant: "other", Epoch: 2, Data: []byte("second")})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	got, err := s.Meta(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	assertMeta(t, got, first)
}

func testNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, Meta{ID: "known"})
	calls := []struct {
		name string
		call func() error
	}{
		{"Meta", func() error { _, err := s.Meta(ctx, "unknown"); return err }},
		{"Append", func() error {
			return s.Append(ctx, "unknown", []Record{{Seq: 1, Data: []byte("a")}})
		}},
		{"Read", func() error { _, err := s.Read(ctx, "unknown", 0, 0); return err }},
		{"LastSeq", func() error { _, err := s.LastSeq(ctx, "unknown"); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of an unknown session = %v, want ErrNotFound", c.name, err)
		}
	}
}

func testAppendReadOrder(t *testing.T, s Store) {
	mustCreate(t, s, Meta{ID: "s1"})
	mustAppend(t, s, "s1", 1, 1)
	mustAppend(t, s, "s1", 2, 5)
	mustAppend(t, s, "s1", 7, 200)
	mustAppend(t, s, "s1", 207, 100) // past 255: the second byte of big-endian seqs counts
	assertLog(t, s, "s1", 306)
}

func testReadAfterLimit(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, Meta{ID: "s1"})
	mustAppend(t, s, "s1", 1, 10)
	tests := []struct {
		name         string
		after        uint64
		limit        int
		first, count int
	}{
		{"no limit reads everything", 0, 0, 1, 10},
		{"a negative limit reads everything", 0, -1, 1, 10},
		{"a limit stops the read", 0, 3, 1, 3},
		{"after skips the records up to it", 4, 0, 5, 6},
		{"after and limit together", 4, 2, 5, 2},
		{"a limit past the end reads what there is", 8, 100, 9, 2},
		{"after the last record reads nothing", 10, 0, 0, 0},
		{"after beyond the end reads nothing", 99, 5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := s.Read(ctx, "s1", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.count {
				t.Fatalf("got %d records, want %d", len(recs), tt.count)
			}
			for i, r := range recs {
				assertRecord(t, "s1", r, uint64(tt.first+i))
			}
		})
	}
}

func testSeqConflicts(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, Meta{ID: "s1"})
	mustAppend(t, s, "s1", 1, 3)
	tests := []struct {
		name string
		seqs []uint64
	}{
		{"a gap after the end", []uint64{5}},
		{"a seq already taken", []uint64{3}},
		{"seq zero", []uint64{0}},
		{"a batch rewriting the past", []uint64{2, 3, 4}},
		{"a batch with a hole", []uint64{4, 6}},
		{"a batch with a repeated seq", []uint64{4, 5, 5}},
		{"a batch out of order", []uint64{5, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := make([]Record, len(tt.seqs))
			for i, seq := range tt.seqs {
				recs[i] = Record{Seq: seq, Data: []byte("conflicting")}
			}
			if err := s.Append(ctx, "s1", recs); !errors.Is(err, ErrSeqConflict) {
				t.Fatalf("Append(%v) = %v, want ErrSeqConflict", tt.seqs, err)
			}
			assertLog(t, s, "s1", 3)
		})
	}
}

func testDataCopied(t *testing.T, s Store) {
	ctx := context.Background()
	metaData := []byte("meta")
	mustCreate(t, s, Meta{ID: "s1", Data: metaData})
	data := recordData("s1", 1)
	if err := s.Append(ctx, "s1", []Record{{Seq: 1, Data: data}}); err != nil {
		t.Fatal(err)
	}
	metaData[0], data[0] = 'X', 'X'

	recs := readAll(t, s, "s1")
	recs[0].Data[0] = 'Y'
	meta, err := s.Meta(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	meta.Data[0] = 'Y'

	assertLog(t, s, "s1", 1)
	meta, err = s.Meta(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if string(meta.Data) != "meta" {
		t.Errorf("meta data = %q after callers changed their copies, want %q", meta.Data, "meta")
	}
}

func testValidation(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, Meta{ID: "s1"})
	one := []Record{{Seq: 1, Data: []byte("a")}}
	long := strings.Repeat("x", MaxIDLen+1)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"create with an empty ID", func() error { return s.Create(ctx, Meta{}) }, ErrInvalidID},
		{"create with an ID over the limit",
			func() error { return s.Create(ctx, Meta{ID: long}) }, ErrInvalidID},
		{"create with a tenant over the limit", func() error {
			return s.Create(ctx, Meta{ID: "t", Tenant: strings.Repeat("t", MaxTenantLen+1)})
		}, ErrTooLarge},
		{"create with meta data over the limit", func() error {
			return s.Create(ctx, Meta{ID: "t", Data: make([]byte, MaxMetaDataBytes+1)})
		}, ErrTooLarge},
		{"append with an empty ID", func() error { return s.Append(ctx, "", one) }, ErrInvalidID},
		{"append with an ID over the limit",
			func() error { return s.Append(ctx, long, one) }, ErrInvalidID},
		{"append without records", func() error { return s.Append(ctx, "s1", nil) },
			ErrInvalidRecord},
		{"append of a record without data", func() error {
			return s.Append(ctx, "s1", []Record{{Seq: 1}})
		}, ErrInvalidRecord},
		{"append of a record over the limit", func() error {
			return s.Append(ctx, "s1", []Record{{Seq: 1, Data: make([]byte, MaxRecordBytes+1)}})
		}, ErrTooLarge},
		{"append of too many records", func() error {
			return s.Append(ctx, "s1", seqRecords("s1", 1, MaxAppendRecords+1))
		}, ErrTooLarge},
		{"meta with an empty ID",
			func() error { _, err := s.Meta(ctx, ""); return err }, ErrInvalidID},
		{"read with an ID over the limit",
			func() error { _, err := s.Read(ctx, long, 0, 0); return err }, ErrInvalidID},
		{"last seq with an empty ID",
			func() error { _, err := s.LastSeq(ctx, ""); return err }, ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	assertLog(t, s, "s1", 0)
	if _, err := s.Meta(ctx, "t"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused create left a session behind: Meta = %v", err)
	}

	// The limits themselves are accepted.
	mustAppend(t, s, "s1", 1, MaxAppendRecords)
	big := []Record{{Seq: MaxAppendRecords + 1, Data: make([]byte, MaxRecordBytes)}}
	if err := s.Append(ctx, "s1", big); err != nil {
		t.Fatalf("append of a record at the limit: %v", err)
	}
}

func testPrefixIDs(t *testing.T, s Store) {
	ids := []string{"a", "a\x00", "a\x00\x00", "ab", "a\xff", "\x00"}
	for i, id := range ids {
		mustCreate(t, s, Meta{ID: id, Epoch: uint64(i)})
		mustAppend(t, s, id, 1, i+1)
	}
	for i, id := range ids {
		assertLog(t, s, id, i+1)
		meta, err := s.Meta(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if meta.ID != id || meta.Epoch != uint64(i) {
			t.Errorf("Meta(%q) = {ID: %q, Epoch: %d}", id, meta.ID, meta.Epoch)
		}
	}
}

// testConcurrentOneSession races writers for each seq of one log: each reads the
// last seq and tries to append the next one. Exactly one writer must win each seq.
func testConcurrentOneSession(t *testing.T, s Store) {
	const writers, total = 8, 120
	ctx := context.Background()
	mustCreate(t, s, Meta{ID: "s1"})

	var mu sync.Mutex
	won := make(map[uint64]string) // seq -> data of the append that returned nil
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				last, err := s.LastSeq(ctx, "s1")
				if err != nil || last >= total {
					return
				}
				data := fmt.Sprintf("writer %d attempt %d", w, attempt)
				err = s.Append(ctx, "s1", []Record{{Seq: last + 1, Data: []byte(data)}})
				switch {
				case err == nil:
					mu.Lock()
					if prev, dup := won[last+1]; dup {
						t.Errorf("seq %d won twice: %q and %q", last+1, prev, data)
					}
					won[last+1] = data
					mu.Unlock()
				case !errors.Is(err, ErrSeqConflict):
					t.Errorf("Append = %v, want nil or ErrSeqConflict", err)
					return
				}
			}
		}()
	}
	wg.Wait()

	recs := readAll(t, s, "s1")
	if len(recs) != total || len(won) != total {
		t.Fatalf("log has %d records and %d appends won, want %d of each",
			len(recs), len(won), total)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || string(r.Data) != won[r.Seq] {
			t.Fatalf("record %d = {%d, %q}, want {%d, %q}", i, r.Seq, r.Data, i+1, won[r.Seq])
		}
	}
}

// testConcurrentManySessions appends to many sessions at once, each writer also
// sending a stale append that must fail alone, without harming the appends it
// shares a commit with.
func testConcurrentManySessions(t *testing.T, s Store) {
	const sessions, perSession = 32, 15
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range sessions {
		id := fmt.Sprintf("many-%02d", i)
		mustCreate(t, s, Meta{ID: id})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); seq <= perSession; seq++ {
				if err := s.Append(ctx, id, seqRecords(id, seq, 1)); err != nil {
					t.Errorf("Append(%s, %d): %v", id, seq, err)
					return
				}
				stale := []Record{{Seq: seq, Data: []byte("stale")}}
				if err := s.Append(ctx, id, stale); !errors.Is(err, ErrSeqConflict) {
					t.Errorf("stale Append(%s, %d) = %v, want ErrSeqConflict", id, seq, err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range sessions {
		assertLog(t, s, fmt.Sprintf("many-%02d", i), perSession)
	}
}

func testCanceledContext(t *testing.T, s Store) {
	mustCreate(t, s, Meta{ID: "s1"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, "s1", seqRecords("s1", 1, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context = %v, want context.Canceled", err)
	}
	if err := s.Create(ctx, Meta{ID: "s2"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Read(ctx, "s1", 0, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context = %v, want context.Canceled", err)
	}
	assertLog(t, s, "s1", 0)
	if _, err := s.Meta(context.Background(), "s2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta(s2) = %v, want ErrNotFound", err)
	}
}

func testClosed(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, Meta{ID: "s1"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return s.Create(ctx, Meta{ID: "s2"}) }},
		{"Meta", func() error { _, err := s.Meta(ctx, "s1"); return err }},
		{"Append", func() error { return s.Append(ctx, "s1", seqRecords("s1", 1, 1)) }},
		{"Read", func() error { _, err := s.Read(ctx, "s1", 0, 0); return err }},
		{"LastSeq", func() error { _, err := s.LastSeq(ctx, "s1"); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, err)
		}
	}
}

// recordData is the data the tests store at seq of session id.
func recordData(id string, seq uint64) []byte {
	return fmt.Appendf(nil, "session %q record %d", id, seq)
}

// seqRecords returns n records of session id numbered from first.
func seqRecords(id string, first uint64, n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		seq := first + uint64(i)
		recs[i] = Record{Seq: seq, Data: recordData(id, seq)}
	}
	return recs
}

func mustCreate(t testing.TB, s Store, meta Meta) {
	t.Helper()
	if err := s.Create(context.Background(), meta); err != nil {
		t.Fatalf("Create(%q): %v", meta.ID, err)
	}
}

func mustAppend(t testing.TB, s Store, id string, first uint64, n int) {
	t.Helper()
	if err := s.Append(context.Background(), id, seqRecords(id, first, n)); err != nil {
		t.Fatalf("Append(%q, %d..%d): %v", id, first, first+uint64(n)-1, err)
	}
}

func lastSeq(t testing.TB, s Store, id string) uint64 {
	t.Helper()
	last, err := s.LastSeq(context.Background(), id)
	if err != nil {
		t.Fatalf("LastSeq(%q): %v", id, err)
	}
	return last
}

func readAll(t testing.TB, s Store, id string) []Record {
	t.Helper()
	recs, err := s.Read(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatalf("Read(%q): %v", id, err)
	}
	return recs
}

// assertLog checks that the session's log is exactly seqRecords(id, 1, n).
func assertLog(t testing.TB, s Store, id string, n int) {
	t.Helper()
	if last := lastSeq(t, s, id); last != uint64(n) {
		t.Fatalf("LastSeq(%q) = %d, want %d", id, last, n)
	}
	recs := readAll(t, s, id)
	if len(recs) != n {
		t.Fatalf("log of %q has %d records, want %d", id, len(recs), n)
	}
	for i, r := range recs {
		assertRecord(t, id, r, uint64(i+1))
	}
}

func assertRecord(t testing.TB, id string, r Record, seq uint64) {
	t.Helper()
	if r.Seq != seq || !bytes.Equal(r.Data, recordData(id, seq)) {
		t.Fatalf("record = {%d, %q}, want {%d, %q}", r.Seq, r.Data, seq, recordData(id, seq))
	}
}

func assertMeta(t testing.TB, got, want Meta) {
	t.Helper()
	if got.ID != want.ID || got.Tenant != want.Tenant || got.Epoch != want.Epoch ||
		!bytes.Equal(got.Data, want.Data) {
		t.Fatalf("meta = {%.12q %.12q %d %d bytes}, want {%.12q %.12q %d %d bytes}",
			got.ID, got.Tenant, got.Epoch, len(got.Data),
			want.ID, want.Tenant, want.Epoch, len(want.Data))
	}
}
