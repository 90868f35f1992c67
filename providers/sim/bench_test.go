package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// BenchmarkMessagesStream measures one streamed Messages request with a cached
// system prompt and a short conversation, over loopback HTTP.
func BenchmarkMessagesStream(b *testing.B) {
	srv := startServer(b, Options{})
	req := messagesReq(sonnet, []map[string]any{marked(text(longText(2000)))},
		msg("user", text("Hello.")), msg("assistant", text("Hi, how can I help?")),
		msg("user", marked(text("Summarize the refund rules."))))
	req["stream"] = true
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages",
			bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range anthropicHeaders("k") {
			r.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
}

// BenchmarkChatStream measures one streamed Chat Completions request with a long
// system prompt, over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	srv := startServer(b, Options{})
	req := chatReq(gpt, chatMsg("system", longText(2000)), chatMsg("user", "Hello."),
		chatMsg("assistant", "Hi, how can I help?"), chatMsg("user", "Summarize the rules."))
	req["stream"] = true
	req["stream_options"] = map[string]any{"include_usage": true}
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
			bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range openaiHeaders("k") {
			r.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
}

// BenchmarkResponsesStream measures one streamed Responses request with long
// instructions, over loopback HTTP.
func BenchmarkResponsesStream(b *testing.B) {
	srv := startServer(b, Options{})
	body, err := json.Marshal(map[string]any{"model": gpt, "stream": true,
		"instructions": longText(2000), "input": []any{
			map[string]any{"role": "user", "content": "Hello."},
			map[string]any{"role": "assistant", "content": "Hi, how can I help?"},
			map[string]any{"role": "user", "content": "Summarize the rules."}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/responses",
			bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range openaiHeaders("k") {
			r.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
}
