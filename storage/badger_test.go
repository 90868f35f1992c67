package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openTestBadger opens a synced store in dir that is closed when the test ends.
func openTestBadger(t testing.TB, dir string) *Badger {
	t.Helper()
	b, err := OpenBadger(DefaultBadgerOptions(dir))
	if err != nil {
		t.Fatalf("OpenBadger: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestBadgerConformance(t *testing.T) {
	testConformance(t, func(t *testing.T) Store {
		return openTestBadger(t, t.TempDir())
	})
}

func TestOpenBadgerWithoutDirectoryFails(t *testing.T) {
	if _, err := OpenBadger(BadgerOptions{}); err == nil {
		t.Fatal("OpenBadger with no directory succeeded")
	}
}

func TestDefaultBadgerOptionsSyncWrites(t *testing.T) {
	if opts := DefaultBadgerOptions("x"); !opts.SyncWrites || opts.Dir != "x" {
		t.Fatalf("DefaultBadgerOptions = %+v, want Dir x and SyncWrites", opts)
	}
}

func TestBadgerReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	metas := []Meta{
		{ID: "s1", Tenant: "acme", Epoch: 3, Data: []byte("settings")},
		{ID: "s2", Tenant: "acme", Epoch: 1},
		{ID: "big", Tenant: "beta", Epoch: 9},
	}

	b, err := OpenBadger(DefaultBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		mustCreate(t, b, m)
	}
	mustAppend(t, b, "s1", 1, 40)
	mustAppend(t, b, "s1", 41, 2)
	// Records above the value threshold live in the value log.
	bigRec := []Record{{Seq: 1, Data: bytes.Repeat([]byte("tool output "), 2000)}}
	if err := b.Append(ctx, "big", bigRec); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openTestBadger(t, dir)
	for _, m := range metas {
		got, err := b.Meta(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		assertMeta(t, got, m)
	}
	assertLog(t, b, "s1", 42)
	assertLog(t, b, "s2", 0)
	recs := readAll(t, b, "big")
	if len(recs) != 1 || !bytes.Equal(recs[0].Data, bigRec[0].Data) {
		t.Fatalf("large record did not survive the reopen: %d records", len(recs))
	}
	mustAppend(t, b, "s1", 43, 1) // the log continues where it ended
	assertLog(t, b, "s1", 43)
}

// TestBadgerCloseRacesWrites closes the store while writers are busy: every
// append either lands or returns ErrClosed, and every Close returns nil.
func TestBadgerCloseRacesWrites(t *testing.T) {
	b := openTestBadger(t, t.TempDir())
	ctx := context.Background()
	const writers = 16
	for i := range writers {
		mustCreate(t, b, Meta{ID: fmt.Sprintf("w%d", i)})
	}

	var wg sync.WaitGroup
	var landed atomic.Int64
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", i)
			for seq := uint64(1); ; seq++ {
				err := b.Append(ctx, id, seqRecords(id, seq, 1))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append = %v, want nil or ErrClosed", err)
					return
				}
				landed.Add(1)
			}
		}()
	}
	waitFor(t, func() bool { return landed.Load() >= 100 })

	var closers sync.WaitGroup
	for range 4 {
		closers.Add(1)
		go func() {
			defer closers.Done()
			if err := b.Close(); err != nil {
				t.Errorf("Close = %v, want nil", err)
			}
		}()
	}
	closers.Wait()
	wg.Wait()
}

func TestBadgerMetaEncoding(t *testing.T) {
	valid := []Meta{
		{ID: "s", Tenant: "t", Epoch: 1, Data: []byte("d")},
		{ID: "s"},
		{ID: strings.Repeat("é", 100), Tenant: "x", Epoch: 1<<64 - 1, Data: []byte{0, 1}},
	}
	for _, m := range valid {
		got, err := decodeMeta(encodeMeta(m))
		if err != nil {
			t.Fatalf("decodeMeta(encodeMeta(%.10q)): %v", m.ID, err)
		}
		assertMeta(t, got, m)
	}

	whole := encodeMeta(Meta{ID: "session", Tenant: "tenant", Epoch: 300})
	corrupt := []struct {
		name string
		val  []byte
	}{
		{"an empty value", nil},
		{"an unknown format", append([]byte{9}, whole[1:]...)},
		{"an ID cut short", whole[:4]},
		{"a tenant cut short", whole[:11]},
		{"a missing epoch", whole[:16]},
		{"an epoch cut short", whole[:17]},
		{"a length past the end", []byte{metaFormat, 200, 'a'}},
	}
	for _, tt := range corrupt {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeMeta(tt.val); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeMeta = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestBadgerLoggerKeepsWarningsAndErrors(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := slogBadgerLogger{log: log}
	l.Debugf("debug %d\n", 1)
	l.Infof("info %d\n", 2)
	l.Warningf("warning %d\n", 3)
	l.Errorf("error %d\n", 4)

	out := buf.String()
	for _, want := range []string{"level=WARN", "detail=\"warning 3\"", "level=ERROR",
		"detail=\"error 4\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"debug 1", "info 2", "level=INFO", "level=DEBUG"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("log has %s:\n%s", unwanted, out)
		}
	}
}

// crashDirEnv tells the test binary, run again as a child, where its store is.
const crashDirEnv = "STATED_STORAGE_CRASH_DIR"

// TestBadgerCrashLosesNothingAcknowledged runs appenders in a child process,
// kills it with SIGKILL mid-stream and reopens its directory: every seq the child
// saw acknowledged must be there, and no log may have a gap.
func TestBadgerCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBadgerCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	acked := make(map[string]uint64) // session -> highest acknowledged seq
	lines, total := bufio.NewScanner(stdout), 0
	for lines.Scan() {
		if id, seq, ok := parseAck(lines.Text()); ok {
			acked[id] = max(acked[id], seq)
			total++
		}
		if total == 400 {
			// Kill while the child keeps appending; the acks already in the pipe
			// are read below.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if total < 400 {
		t.Fatalf("child stopped after %d acks (%v):\n%s", total, err, stderr.String())
	}

	b := openTestBadger(t, dir)
	for id, seq := range acked {
		last := lastSeq(t, b, id)
		if last < seq {
			t.Errorf("session %s: acknowledged seq %d, log ends at %d", id, seq, last)
		}
		assertLog(t, b, id, int(last))
	}
	t.Logf("%d acks over %d sessions survived the kill", total, len(acked))
}

// TestBadgerCrashChild is the child of TestBadgerCrashLosesNothingAcknowledged.
// It appends to several sessions at once and prints "acked <session> <seq>" after
// each Append returns, until it is killed (or gives up after a minute).
func TestBadgerCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestBadgerCrashLosesNothingAcknowledged")
	}
	b, err := OpenBadger(DefaultBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("crash-%d", i)
			mustCreate(t, b, Meta{ID: id})
			for seq := uint64(1); time.Now().Before(deadline); seq++ {
				if err := b.Append(context.Background(), id, seqRecords(id, seq, 1)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				// One write per line: lines from several goroutines do not mix.
				os.Stdout.WriteString("acked " + id + " " + strconv.FormatUint(seq, 10) + "\n")
			}
		}()
	}
	wg.Wait()
}

func parseAck(line string) (id string, seq uint64, ok bool) {
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "acked" {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(fields[2], 10, 64)
	return fields[1], seq, err == nil
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(time.Millisecond)
	}
}

// benchRecord is a typical small event: a short chat turn in JSON.
var benchRecord = bytes.Repeat([]byte("x"), 300)

// BenchmarkBadgerAppend appends one record at a time to one session, synced: one
// commit per append.
func BenchmarkBadgerAppend(b *testing.B) {
	s := openTestBadger(b, b.TempDir())
	ctx := context.Background()
	mustCreate(b, s, Meta{ID: "bench"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Append(ctx, "bench", []Record{{Seq: uint64(i + 1), Data: benchRecord}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkBadgerAppendParallel appends from 64 goroutines per CPU, each to its
// own session, synced: concurrent appends share commits.
func BenchmarkBadgerAppendParallel(b *testing.B) {
	const parallelism = 64
	s := openTestBadger(b, b.TempDir())
	ctx := context.Background()
	goroutines := parallelism * runtime.GOMAXPROCS(0)
	for i := range goroutines {
		mustCreate(b, s, Meta{ID: fmt.Sprintf("bench-%d", i)})
	}
	var next atomic.Int64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("bench-%d", next.Add(1)-1)
		for seq := uint64(1); pb.Next(); seq++ {
			if err := s.Append(ctx, id, []Record{{Seq: seq, Data: benchRecord}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkBadgerRead200 reads a whole session of 200 records.
func BenchmarkBadgerRead200(b *testing.B) {
	s := openTestBadger(b, b.TempDir())
	ctx := context.Background()
	mustCreate(b, s, Meta{ID: "bench"})
	recs := make([]Record, 200)
	for i := range recs {
		recs[i] = Record{Seq: uint64(i + 1), Data: benchRecord}
	}
	if err := s.Append(ctx, "bench", recs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got, err := s.Read(ctx, "bench", 0, 0)
		if err != nil || len(got) != 200 {
			b.Fatalf("Read = %d records, %v", len(got), err)
		}
	}
}
