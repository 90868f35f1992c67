package session

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/storage"
)

// The per-turn pipeline, measured whole: a turn submitted as the transport
// submits it, laid out, admitted, encoded by the real adapter, sent through the
// adapter's HTTP client, its streamed answer relayed and stored, and the rollup
// decision that follows. The upstream is fakeUpstream, an in-process round
// tripper, so that no simulator's CPU lands in the figures.
//
// Every sub-benchmark starts from a session whose log already holds h turns.
// Each iteration adds a turn, so the session is replaced by a fresh copy of the
// base log every benchTurnsPerCopy turns (off the timer) to keep the log near h;
// the copies start at offsets spread over a rollup cycle, so that the rollups a
// long session takes are measured at their real rate.
//
//	go test ./session -run '^$' -bench BenchmarkTurn -count 6

// benchTurnsPerCopy is how many timed turns run on one copy of a base log.
const benchTurnsPerCopy = 5

// benchSpread is the most turns past h a copy may start at: about two rollup
// cycles of the default policy for these turns.
const benchSpread = 80

// BenchmarkTurn reports, per turn: ns/op (wall), cpu-ns/turn (the process's CPU,
// user and system, taken with getrusage around the timed turns), B/op and
// allocs/op, and body-B/turn, the request bytes sent upstream.
func BenchmarkTurn(b *testing.B) {
	corpus := loadBenchCorpus(b)
	for _, api := range []string{"anthropic", "openai"} {
		for _, rollup := range []bool{true, false} {
			for _, h := range []int{10, 100, 1000} {
				name := fmt.Sprintf("%s/rollup=%s/h=%d", api, onOff(rollup), h)
				b.Run(name, func(b *testing.B) {
					benchTurns(b, benchCase{api: api, rollup: rollup, h: h}, corpus,
						storage.NewMemory())
				})
			}
		}
	}
	for _, h := range []int{10, 1000} {
		b.Run(fmt.Sprintf("anthropic/badger/rollup=on/h=%d", h), func(b *testing.B) {
			st, err := storage.OpenBadger(storage.BadgerOptions{Dir: b.TempDir(),
				SyncWrites: true, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			benchTurns(b, benchCase{api: "anthropic", rollup: true, h: h}, corpus, st)
		})
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// benchCase is one configuration of the turn benchmark.
type benchCase struct {
	api    string // "anthropic" or "openai"
	rollup bool
	h      int // turns in the log before the timed ones
}

// benchCorpus is real text to make turns of: user turns of about 300 bytes and
// answers of about 500, from the shared conversations.
type benchCorpus struct {
	system  string
	users   []string
	answers []string
}

func loadBenchCorpus(b *testing.B) *benchCorpus {
	b.Helper()
	dir := "../../shared/data"
	system, err := os.ReadFile(dir + "/system-prompts/assistant-long.txt")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal(err)
		}
		b.Skip("../shared/data is not here")
	}
	f, err := os.Open(dir + "/conversations/oasst-en.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c := &benchCorpus{system: string(system)}
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var conv struct {
			Messages []struct{ Role, Content string }
		}
		if err := json.Unmarshal(sc.Bytes(), &conv); err != nil {
			b.Fatal(err)
		}
		for _, m := range conv.Messages {
			all = append(all, m.Content)
		}
	}
	// Each text is cut or extended with the next ones to the target length, so
	// that no two turns in a row are alike (the runaway guard would pause them).
	for i := range all {
		c.users = append(c.users, textOfLength(all, i, 300))
		c.answers = append(c.answers, textOfLength(all, len(all)-1-i, 500))
	}
	return c
}

// textOfLength is texts[i], followed by the texts after it, cut to about n bytes
// at a space.
func textOfLength(texts []string, i, n int) string {
	var sb strings.Builder
	for j := i; sb.Len() < n; j = (j + 1) % len(texts) {
		if sb.Len() > 0 {
			sb.WriteString(" ")
		}
		sb.WriteString(texts[j])
	}
	s := sb.String()[:n]
	if k := strings.LastIndexByte(s, ' '); k > n/2 {
		s = s[:k]
	}
	return strings.ToValidUTF8(s, "")
}

// benchBase is a base log built once per case and copied for every run.
type benchBase struct {
	meta storage.Meta
	recs []storage.Record
	// ends[t] is the number of events after t turns.
	ends []int
}

var (
	benchBasesMu sync.Mutex
	benchBases   = map[benchCase]*benchBase{}
)

// benchRig is a manager over a store with the real adapter in front of
// fakeUpstream.
type benchRig struct {
	mgr      *Manager
	store    storage.Store
	upstream *fakeUpstream
	clock    *benchClock
	corpus   *benchCorpus
	turn     int // turns submitted, for turn IDs and texts
}

func newBenchRig(b *testing.B, c benchCase, corpus *benchCorpus, store storage.Store) *benchRig {
	b.Helper()
	up := &fakeUpstream{api: c.api, answers: corpus.answers}
	client := &http.Client{Transport: up}
	var prov providers.Provider
	model := "claude-sonnet-4-5"
	if c.api == "anthropic" {
		prov = anthropic.New(anthropic.Config{BaseURL: "http://upstream.invalid",
			HTTPClient: client})
	} else {
		model = "gpt-4.1"
		prov = openai.New(openai.Config{BaseURL: "http://upstream.invalid/v1",
			HTTPClient: client})
	}
	policy := ContextPolicy{}
	windows := map[string]int(nil)
	if !c.rollup {
		// The whole log is sent: give it the 1M-token window it needs.
		policy.RollupHighTokens = -1
		windows = map[string]int{model: 1 << 20}
	}
	clock := &sharedBenchClock
	mgr, err := NewManager(Config{Model: model, Logger: quietLogger(), Cost: benchPrices,
		Context: policy, ContextWindows: windows, Now: clock.now}, store, prov)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mgr.Close(context.Background()) })
	return &benchRig{mgr: mgr, store: store, upstream: up, clock: clock, corpus: corpus}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchPrices prices like Claude Sonnet 4.5 and its summaries like Haiku 4.5.
func benchPrices(model string, u providers.Usage) (float64, error) {
	scale := 1e-6
	if strings.Contains(model, "haiku") || strings.Contains(model, "mini") {
		scale = 1e-6 / 3
	}
	c := 3*float64(u.InputTokens) + 3.75*float64(u.CacheWrite5mTokens) +
		6*float64(u.CacheWrite1hTokens) + 0.3*float64(u.CacheReadTokens) +
		15*float64(u.OutputTokens)
	return c * scale, nil
}

// benchClock is the session layer's clock: a minute passes per turn, as in a
// conversation with a person, so the runaway guard's window holds ten turns.
// One clock serves every manager, so that copies of a log never run behind it.
type benchClock struct{ minutes atomic.Int64 }

var sharedBenchClock benchClock

// benchTurnIDs numbers the turns of every benchmark session.
var benchTurnIDs atomic.Int64

var benchEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *benchClock) now() time.Time {
	return benchEpoch.Add(time.Duration(c.minutes.Load()) * time.Minute)
}

// benchTurns runs the case: b.N turns on copies of its base log.
func benchTurns(b *testing.B, c benchCase, corpus *benchCorpus, store storage.Store) {
	base := benchBaseFor(b, c, corpus)
	rig := newBenchRig(b, c, corpus, store)
	spread := min(benchSpread, c.h)
	var cpu time.Duration
	var bodyBytes int64
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for done, copyNo := 0, 0; done < b.N; copyNo++ {
		at := c.h + (copyNo*benchTurnsPerCopy)%spread
		s, sub := rig.copyOf(b, base, at)
		rig.turnAndWait(b, s, sub) // warms what the session keeps between turns
		n := min(benchTurnsPerCopy, b.N-done)
		body0 := rig.upstream.bytes.Load()
		cpu0 := processCPU()
		b.StartTimer()
		for i := 0; i < n; i++ {
			rig.turnAndWait(b, s, sub)
		}
		b.StopTimer()
		cpu += processCPU() - cpu0
		bodyBytes += rig.upstream.bytes.Load() - body0
		done += n
		s.Unsubscribe(sub)
		rig.mgr.evictIdle(time.Now().Add(time.Hour))
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/turn")
	b.ReportMetric(float64(bodyBytes)/float64(b.N), "body-B/turn")
}

// benchBaseFor returns the base log of c, building it on first use: h turns and
// benchSpread more, played through the pipeline, rollups included.
func benchBaseFor(b *testing.B, c benchCase, corpus *benchCorpus) *benchBase {
	b.Helper()
	benchBasesMu.Lock()
	defer benchBasesMu.Unlock()
	if base := benchBases[c]; base != nil {
		return base
	}
	rig := newBenchRig(b, c, corpus, storage.NewMemory())
	s, err := rig.mgr.Open(context.Background(), "bench", Settings{System: corpus.system})
	if err != nil {
		b.Fatal(err)
	}
	sub := newBenchSubscriber()
	s.Subscribe(sub, s.Info().Epoch, 0)
	base := &benchBase{ends: []int{0}}
	for t := 0; t < c.h+benchSpread+benchTurnsPerCopy; t++ {
		rig.turnAndWait(b, s, sub)
		base.ends = append(base.ends, int(s.Info().LastSeq))
	}
	meta, err := rig.store.Meta(context.Background(), s.ID())
	if err != nil {
		b.Fatal(err)
	}
	base.meta = meta
	base.recs, err = rig.store.Read(context.Background(), s.ID(), 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	benchBases[c] = base
	return base
}

// copyOf stores the first turns of base as a new session, loads it as a client's
// resume does and subscribes to it.
func (r *benchRig) copyOf(b *testing.B, base *benchBase, turns int) (*Session,
	*benchSubscriber) {
	b.Helper()
	ctx := context.Background()
	id, err := newID()
	if err != nil {
		b.Fatal(err)
	}
	meta := base.meta
	meta.ID = id
	if err := r.store.Create(ctx, meta); err != nil {
		b.Fatal(err)
	}
	recs := base.recs[:base.ends[turns]]
	for len(recs) > 0 {
		n := min(len(recs), 256)
		if err := r.store.Append(ctx, id, recs[:n]); err != nil {
			b.Fatal(err)
		}
		recs = recs[n:]
	}
	s, err := r.mgr.Get(ctx, meta.Tenant, id)
	if err != nil {
		b.Fatal(err)
	}
	sub := newBenchSubscriber()
	s.Subscribe(sub, s.Info().Epoch, s.Info().LastSeq)
	return s, sub
}

// turnAndWait submits the next user turn and waits until its answer is stored and
// any rollup it started is in the log.
func (r *benchRig) turnAndWait(b *testing.B, s *Session, sub *benchSubscriber) {
	r.turn++
	r.clock.minutes.Add(1)
	text := r.corpus.users[r.turn%len(r.corpus.users)]
	id := "t" + strconv.FormatInt(benchTurnIDs.Add(1), 10) // unique across copies
	in := Input{Kind: KindUser, TurnID: id, Text: text}
	if _, err := s.Submit(context.Background(), sub, in); err != nil {
		b.Fatal(err)
	}
	e := <-sub.answers
	if e.Status != providers.StatusComplete {
		b.Fatalf("answer %d: status %s, error %s", e.Seq, e.Status, e.ErrorCode)
	}
	s.mu.Lock()
	rolling, done := s.rolling, s.rolled
	s.mu.Unlock()
	if rolling {
		<-done
	}
}

// benchSubscriber stands for a client's connection: it takes every note and
// hands over each stored answer.
type benchSubscriber struct {
	answers chan *Event
	notes   int
}

func newBenchSubscriber() *benchSubscriber {
	return &benchSubscriber{answers: make(chan *Event, 1)}
}

func (s *benchSubscriber) Deliver(n Note) {
	s.notes++
	if n.Kind == NoteEvent && n.Event.Kind == KindAssistant {
		s.answers <- n.Event
	}
}

// fakeUpstream is an in-process http.RoundTripper standing in for the provider
// in benchmarks: it reads each request body to io.Discard, counting its bytes,
// and answers with a canned stream of about 500 bytes of text in the API's
// format.
type fakeUpstream struct {
	api     string
	answers []string
	n       atomic.Int64 // requests answered
	bytes   atomic.Int64 // request body bytes read
}

func (f *fakeUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	n, err := io.Copy(io.Discard, req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	f.bytes.Add(n)
	i := int(f.n.Add(1))
	stream := fakeAnthropicStream(f.answers[i%len(f.answers)])
	if f.api == "openai" {
		stream = fakeOpenAIStream(f.answers[i%len(f.answers)])
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1,
		ProtoMinor: 1, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(strings.NewReader(stream)), ContentLength: -1, Request: req,
	}, nil
}

// fakePieces cuts an answer into the pieces of a stream, about 40 bytes each.
func fakePieces(text string) []string {
	var out []string
	for len(text) > 0 {
		n := min(len(text), 40)
		for n < len(text) && text[n]&0xC0 == 0x80 {
			n++ // keep runes whole
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func fakeAnthropicStream(text string) string {
	var sb strings.Builder
	ev := func(name, data string) {
		sb.WriteString("event: " + name + "\ndata: " + data + "\n\n")
	}
	ev("message_start", `{"type":"message_start","message":{"id":"msg_01","type":"message",`+
		`"role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929",`+
		`"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,`+
		`"cache_creation_input_tokens":1000,"cache_read_input_tokens":3000,"output_tokens":1}}}`)
	ev("content_block_start", `{"type":"content_block_start","index":0,`+
		`"content_block":{"type":"text","text":""}}`)
	for _, p := range fakePieces(text) {
		ev("content_block_delta", `{"type":"content_block_delta","index":0,`+
			`"delta":{"type":"text_delta","text":`+jsonString(p)+`}}`)
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn",`+
		`"stop_sequence":null},"usage":{"output_tokens":120}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	return sb.String()
}

func fakeOpenAIStream(text string) string {
	var sb strings.Builder
	chunk := func(choices, usage string) {
		sb.WriteString(`data: {"id":"chatcmpl-9","object":"chat.completion.chunk",` +
			`"created":1700000000,"model":"gpt-4.1-2025-04-14","choices":` + choices +
			`,"usage":` + usage + "}\n\n")
	}
	delta := func(d, finish string) {
		chunk(`[{"index":0,"delta":`+d+`,"logprobs":null,"finish_reason":`+finish+`}]`, "null")
	}
	delta(`{"role":"assistant","content":"","refusal":null}`, "null")
	for _, p := range fakePieces(text) {
		delta(`{"content":`+jsonString(p)+`}`, "null")
	}
	delta(`{}`, `"stop"`)
	chunk("[]", `{"prompt_tokens":4000,"completion_tokens":120,"total_tokens":4120,`+
		`"prompt_tokens_details":{"cached_tokens":3000}}`)
	sb.WriteString("data: [DONE]\n\n")
	return sb.String()
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
