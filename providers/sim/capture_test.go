package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
)

func TestCapturesRecordEachRequest(t *testing.T) {
	s := New(Options{})
	srv := startHandler(t, s)
	system := []map[string]any{marked(text(longText(1100)))}
	first := messagesReq(sonnet, system, msg("user", marked(text("Where is my parcel?"))))
	second := messagesReq(sonnet, system, msg("user", text("Hi.")))
	second["cache_control"] = map[string]any{"type": "ephemeral"}
	sendMessages(t, srv, "key-a", first)
	sendMessages(t, srv, "key-b", second)
	h := openaiHeaders("key-a")
	h[faultHeader] = "status=429"
	post(t, srv, chatPath, h, chatReq(gpt, chatMsg("user", "Hi.")))

	got := s.Captured()
	if len(got) != 3 {
		t.Fatalf("%d captures, want 3", len(got))
	}
	a, b, c := got[0], got[1], got[2]
	sum := sha256.Sum256([]byte("key-a"))
	if a.Seq != 1 || a.Endpoint != messagesPath || a.Model != sonnet || a.Status != 200 ||
		a.KeyHash != hex.EncodeToString(sum[:]) || a.Breakpoints != 2 || a.Stream {
		t.Errorf("first capture %+v", a)
	}
	raw, _ := json.Marshal(first)
	if string(a.Body) != string(raw) {
		t.Errorf("body %s, want %s", a.Body, raw)
	}
	if b.Breakpoints != 2 || b.KeyHash == a.KeyHash {
		t.Errorf("second capture: %d breakpoints, key hash %s", b.Breakpoints, b.KeyHash)
	}
	if a.PrefixHashes[0] != b.PrefixHashes[0] || a.PrefixHashes[1] == b.PrefixHashes[1] {
		t.Errorf("the shared system prefix hashes %s and %s; the different turns %s and %s",
			a.PrefixHashes[0], b.PrefixHashes[0], a.PrefixHashes[1], b.PrefixHashes[1])
	}
	if c.Status != http.StatusTooManyRequests || c.Fault != "status=429" || c.Model != gpt ||
		c.Breakpoints != 0 {
		t.Errorf("third capture %+v", c)
	}
}

func TestCapturesCountOpenAIBreakpoints(t *testing.T) {
	s := New(Options{})
	srv := startHandler(t, s)
	part := func(text string) map[string]any {
		return map[string]any{"type": "text", "text": text,
			"prompt_cache_breakpoint": map[string]any{"mode": "explicit"}}
	}
	req := chatReq("gpt-5.6-sol",
		map[string]any{"role": "system", "content": []any{part("Be brief.")}},
		map[string]any{"role": "user", "content": []any{part("Hi."), part("Really.")}})
	sendChat(t, srv, "k", req)
	if got := s.Captured()[0]; got.Breakpoints != 3 || len(got.PrefixHashes) != 3 {
		t.Errorf("capture %+v, want 3 breakpoints", got)
	}
}

func TestCapturesAreBounded(t *testing.T) {
	tests := []struct {
		name string
		max  int
		want []uint64
	}{
		{"the latest are kept", 2, []uint64{3, 4}},
		{"a negative bound keeps none", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{MaxCaptures: tt.max})
			srv := startHandler(t, s)
			for i := 0; i < 4; i++ {
				sendChat(t, srv, "k", chatReq(gpt, chatMsg("user", "Hi.")))
			}
			var seqs []uint64
			for _, c := range s.Captured() {
				seqs = append(seqs, c.Seq)
			}
			if len(seqs) != len(tt.want) || (len(seqs) > 0 && seqs[0] != tt.want[0]) {
				t.Errorf("kept %v, want %v", seqs, tt.want)
			}
		})
	}
}

func TestCapturesOverHTTP(t *testing.T) {
	s := New(Options{})
	srv := startHandler(t, s)
	sendChat(t, srv, "k", chatReq(gpt, chatMsg("user", "Hi.")))

	resp, body := get(t, srv, http.MethodGet, requestsPath)
	var list []struct {
		Seq      int             `json:"seq"`
		Endpoint string          `json:"endpoint"`
		Body     json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 ||
		len(list) != 1 || list[0].Endpoint != chatPath {
		t.Fatalf("GET %s: %d %s (%v)", requestsPath, resp.StatusCode, body, err)
	}
	var sent map[string]any
	if err := json.Unmarshal(list[0].Body, &sent); err != nil || sent["model"] != gpt {
		t.Errorf("the body is not inline JSON: %s", list[0].Body)
	}

	if resp, _ := get(t, srv, http.MethodDelete, requestsPath); resp.StatusCode != 204 {
		t.Errorf("DELETE: status %d", resp.StatusCode)
	}
	if len(s.Captured()) != 0 {
		t.Errorf("captures left after DELETE")
	}
	sendChat(t, srv, "k", chatReq(gpt, chatMsg("user", "Hi.")))
	if got := s.Captured(); len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("after a reset: %+v, want one capture with seq 2", got)
	}
}

func TestACaptureOfABodyThatIsNotJSONIsAString(t *testing.T) {
	c := Capture{Body: []byte("not json")}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Body string }
	if err := json.Unmarshal(out, &got); err != nil || got.Body != "not json" {
		t.Errorf("%s", out)
	}
}
