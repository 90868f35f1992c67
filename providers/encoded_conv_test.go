package providers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

// sharedConversations reads the conversations of a file of ../shared/data as
// neutral messages, each keyed by its position.
func sharedConversations(t *testing.T, name string) [][]providers.Message {
	t.Helper()
	f, err := os.Open("../../shared/data/conversations/" + name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("../shared/data is not here")
	}
	defer f.Close()
	var out [][]providers.Message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var conv struct {
			Messages []struct {
				Role, Content string
				ToolCallID    string `json:"tool_call_id"`
				ToolCalls     []struct {
					ID       string
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &conv); err != nil {
			t.Fatal(err)
		}
		var msgs []providers.Message
		for _, m := range conv.Messages {
			if m.Role == "system" {
				continue
			}
			nm := providers.Message{Role: providers.Role(m.Role), Text: m.Content,
				ToolCallID: m.ToolCallID, Key: uint64(len(msgs) + 1)}
			for _, c := range m.ToolCalls {
				nm.ToolCalls = append(nm.ToolCalls, providers.ToolCall{ID: c.ID,
					Name: c.Function.Name, Arguments: c.Function.Arguments})
			}
			msgs = append(msgs, nm)
		}
		out = append(out, msgs)
	}
	return out
}

// captureTransport records the body of each request and answers 500, so that
// the adapters stop right after sending.
type captureTransport struct{ bodies [][]byte }

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	c.bodies = append(c.bodies, b)
	return &http.Response{StatusCode: 500, Body: io.NopCloser(strings.NewReader("{}")),
		Header: http.Header{}, Request: r}, nil
}

// TestEncodedMessagesGiveTheSameBodyAsEncodingAfresh plays real conversations
// turn by turn through both adapters, with breakpoints that move every turn, and
// holds the body built from the cache of earlier requests to the body encoded
// from scratch, byte for byte.
func TestEncodedMessagesGiveTheSameBodyAsEncodingAfresh(t *testing.T) {
	convs := sharedConversations(t, "taubench-airline.jsonl")
	convs = append(convs, sharedConversations(t, "glaive-tools-en.jsonl")[:20]...)
	tools := []providers.Tool{{Name: "lookup", Description: "Look a booking up.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`)}}
	adapters := map[string]func(*http.Client) providers.Provider{
		"anthropic": func(c *http.Client) providers.Provider {
			return anthropic.New(anthropic.Config{BaseURL: "http://upstream.invalid", HTTPClient: c})
		},
		"openai": func(c *http.Client) providers.Provider {
			return openai.New(openai.Config{BaseURL: "http://upstream.invalid", HTTPClient: c})
		},
	}
	for name, newAdapter := range adapters {
		t.Run(name, func(t *testing.T) {
			compared := 0
			for _, msgs := range convs {
				fresh, cached := &captureTransport{}, &captureTransport{}
				pf := newAdapter(&http.Client{Transport: fresh})
				pc := newAdapter(&http.Client{Transport: cached})
				cache := &providers.EncodedCache{}
				for k := 1; k <= len(msgs); k++ {
					req := func(enc *providers.EncodedCache) *providers.Request {
						plan := providers.CachePlan{System: true, SystemTTL: "1h",
							Messages: []int{k - 1}, Key: "k"}
						if k > 2 {
							plan.Messages = append(plan.Messages, k-3)
							if k%3 == 0 {
								plan.MessageTTL = map[int]string{k - 3: "1h"}
							}
						}
						return &providers.Request{Model: "claude-sonnet-4-5", MaxTokens: 1024,
							Tools: tools, System: "You help with bookings.",
							Messages: msgs[:k], Cache: plan, Encoded: enc}
					}
					_, errF := pf.Complete(context.Background(), req(nil), nil)
					_, errC := pc.Complete(context.Background(), req(cache), nil)
					if (errF == nil) != (errC == nil) || len(fresh.bodies) != len(cached.bodies) {
						t.Fatalf("turn %d: fresh %v, cached %v", k, errF, errC)
					}
					n := len(fresh.bodies)
					if n > 0 && !bytes.Equal(fresh.bodies[n-1], cached.bodies[n-1]) {
						t.Fatalf("turn %d: bodies differ:\n%s\n%s", k, fresh.bodies[n-1],
							cached.bodies[n-1])
					}
				}
				compared += len(fresh.bodies)
			}
			if compared < 100 {
				t.Fatalf("%d bodies compared; the test played too little", compared)
			}
		})
	}
}
