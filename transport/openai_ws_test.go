package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/responses"
)

// wsCreate sends a response.create event over an official client's WebSocket and
// returns the final response and the types of the events that led to it.
func wsCreate(t *testing.T, conn *responses.ResponseConnection, body map[string]any) (
	*responses.Response, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body["type"] = "response.create"
	data, _ := json.Marshal(body)
	if err := conn.SendRaw(ctx, data); err != nil {
		t.Fatalf("send response.create: %v", err)
	}
	var types []string
	for {
		ev, err := conn.Recv(ctx)
		if err != nil {
			t.Fatalf("receive after %v: %v", types, err)
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.completed", "response.incomplete", "response.failed":
			var env struct {
				Response responses.Response `json:"response"`
			}
			if err := json.Unmarshal([]byte(ev.RawJSON()), &env); err != nil {
				t.Fatal(err)
			}
			return &env.Response, types
		case "error":
			t.Fatalf("error event: %s", ev.RawJSON())
		}
	}
}

func (n *apiNode) dialResponses(t *testing.T) *responses.ResponseConnection {
	t.Helper()
	c := n.client()
	conn, err := c.Responses.Connect(context.Background(), responses.ResponseConnectionOptions{})
	if err != nil {
		t.Fatalf("connect the WebSocket mode: %v", err)
	}
	t.Cleanup(conn.Abort)
	return conn
}

func TestResponsesWebSocketChainSurvivesDroppedSocketAndRestart(t *testing.T) {
	n := startAPINode(t)
	conn := n.dialResponses(t)
	sys := longSystem()
	r1, types := wsCreate(t, conn, map[string]any{"model": gptModel, "instructions": sys,
		"store": false, "input": "Hello there."})
	if r1.Status != "completed" || r1.OutputText() == "" || types[0] != "response.created" {
		t.Fatalf("first response %s %q after %v", r1.Status, r1.OutputText(), types)
	}
	r2, _ := wsCreate(t, conn, map[string]any{"model": gptModel, "instructions": sys,
		"previous_response_id": r1.ID, "input": "Second."})

	// The socket drops; a new one goes on with the chain.
	conn.Abort()
	conn = n.dialResponses(t)
	r3, _ := wsCreate(t, conn, map[string]any{"model": gptModel, "instructions": sys,
		"previous_response_id": r2.ID, "input": "Third."})
	if r3.Usage.InputTokensDetails.CachedTokens == 0 {
		t.Fatalf("the chain on a new socket read no cache: %+v", r3.Usage)
	}

	// The server restarts; the chain goes on.
	n.restart()
	conn = n.dialResponses(t)
	r4, _ := wsCreate(t, conn, map[string]any{"model": gptModel, "instructions": sys,
		"previous_response_id": r3.ID, "input": "Fourth."})
	if r4.Status != "completed" {
		t.Fatalf("after a restart: %s", r4.Status)
	}

	sid := n.sessionOf(t, r4.ID)
	evs := n.events(sid)
	var turns []string
	for _, e := range evs {
		if e.Kind == "user" {
			turns = append(turns, e.Text)
		}
	}
	if fmt.Sprint(turns) != "[Hello there. Second. Third. Fourth.]" || len(evs) != 8 {
		t.Fatalf("the session holds %d events, turns %v", len(evs), turns)
	}
}

func TestResponsesWebSocketErrors(t *testing.T) {
	n := startAPINode(t)
	conn := n.dialResponses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		event string
		code  string
	}{
		{"an unknown previous response", `{"type":"response.create","model":"gpt-4.1",` +
			`"input":"hi","previous_response_id":"resp_nosuch"}`, "previous_response_not_found"},
		{"an unknown model", `{"type":"response.create","model":"nope-1","input":"hi"}`,
			"model_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := conn.SendRaw(ctx, json.RawMessage(tc.event)); err != nil {
				t.Fatal(err)
			}
			_, err := conn.FinalResponse(ctx)
			var perr *responses.ResponseProtocolError
			if !errors.As(err, &perr) {
				t.Fatalf("want an error event, got %v", err)
			}
			var ev struct {
				Status int `json:"status"`
				Error  struct {
					Code string `json:"code"`
					Type string `json:"type"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(perr.Event.RawJSON()), &ev)
			if ev.Error.Code != tc.code || ev.Status != 404 || ev.Error.Type == "" {
				t.Fatalf("error event %s, want code %s", perr.Event.RawJSON(), tc.code)
			}
		})
	}

	// The socket still serves after errors.
	r, _ := wsCreate(t, conn, map[string]any{"model": gptModel, "input": "hi"})
	if r.Status != "completed" {
		t.Fatalf("after errors: %s", r.Status)
	}
}
