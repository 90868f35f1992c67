package transport_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/conversations"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/transport"
)

// respond creates a response, streamed or not, and returns it with the session
// that answered.
func respond(t *testing.T, c openai.Client, stream bool, p responses.ResponseNewParams) (
	*responses.Response, string) {
	t.Helper()
	ctx := context.Background()
	var hr *http.Response
	if !stream {
		r, err := c.Responses.New(ctx, p, option.WithResponseInto(&hr))
		if err != nil {
			t.Fatalf("create response: %v", err)
		}
		return r, hr.Header.Get(transport.SessionHeader)
	}
	s := c.Responses.NewStreaming(ctx, p, option.WithResponseInto(&hr))
	var final *responses.Response
	var types []string
	var text strings.Builder
	for s.Next() {
		ev := s.Current()
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed", "response.incomplete", "response.failed":
			r := ev.Response
			final = &r
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("response stream: %v", err)
	}
	if final == nil || types[0] != "response.created" || types[1] != "response.in_progress" {
		t.Fatalf("stream events %v", types)
	}
	if final.OutputText() != text.String() {
		t.Fatalf("deltas %q differ from the final text %q", text.String(), final.OutputText())
	}
	return final, hr.Header.Get(transport.SessionHeader)
}

func textInput(s string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: openai.String(s)}
}

func TestResponsesChainOnPreviousResponseID(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "streamed"}[stream], func(t *testing.T) {
			n := startAPINode(t)
			c := n.client()
			sys := longSystem()
			r1, sid := respond(t, c, stream, responses.ResponseNewParams{Model: gptModel,
				Instructions: openai.String(sys), Input: textInput("Hello there.")})
			if r1.Status != "completed" || r1.OutputText() == "" {
				t.Fatalf("first response %s: %q", r1.Status, r1.OutputText())
			}

			r2, sid2 := respond(t, c, stream, responses.ResponseNewParams{Model: gptModel,
				Instructions: openai.String(sys), Input: textInput("And then?"),
				PreviousResponseID: openai.String(r1.ID)})
			if sid2 != sid || r2.PreviousResponseID != r1.ID {
				t.Fatalf("chained response in session %s (want %s), previous %q", sid2, sid,
					r2.PreviousResponseID)
			}
			if r2.Usage.InputTokensDetails.CachedTokens == 0 {
				t.Fatalf("the chained response read no cache: %+v", r2.Usage)
			}
			body := string(n.bytes.last(t, "/v1/responses"))
			if strings.Contains(body, "Hello there.") || strings.Contains(body, r1.OutputText()) {
				t.Fatalf("the chained request re-sent history")
			}
			if extra := len(body) - len(sys); extra > 300 {
				t.Fatalf("the chained request sent %d bytes besides the instructions", extra)
			}
			if evs := n.events(sid); len(evs) != 4 || evs[2].Text != "And then?" {
				t.Fatalf("the session's log is not the chain: %+v", evs)
			}

			got, err := c.Responses.Get(context.Background(), r2.ID, responses.ResponseGetParams{})
			if err != nil || got.OutputText() != r2.OutputText() || got.Status != "completed" {
				t.Fatalf("get response: %v, %q", err, got.OutputText())
			}
		})
	}
}

func TestResponsesChainSurvivesRestartAndForks(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	r1, sid := respond(t, c, false, responses.ResponseNewParams{Model: claudeModel,
		Input: textInput("Pick a number."), Store: openai.Bool(false)})

	n.restart()
	c = n.client()
	r2, sid2 := respond(t, c, false, responses.ResponseNewParams{Model: claudeModel,
		Input: textInput("Double it."), PreviousResponseID: openai.String(r1.ID)})
	if sid2 != sid {
		t.Fatalf("after a restart the chain went to session %s, not %s", sid2, sid)
	}

	// A second continuation of r1 forks: r1's history, then the new input.
	_, sid3 := respond(t, c, false, responses.ResponseNewParams{Model: claudeModel,
		Input: textInput("Halve it."), PreviousResponseID: openai.String(r1.ID)})
	evs := n.events(sid3)
	if sid3 == sid || len(evs) != 4 || evs[0].Text != "Pick a number." ||
		evs[2].Text != "Halve it." {
		t.Fatalf("fork %s (of %s) holds %+v", sid3, sid, evs)
	}

	// store false: chained, but not retrievable.
	_, err := c.Responses.Get(context.Background(), r1.ID, responses.ResponseGetParams{})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("get of a store:false response: %v", err)
	}
	if _, err := c.Responses.Get(context.Background(), r2.ID,
		responses.ResponseGetParams{}); err != nil {
		t.Fatalf("get of a stored response: %v", err)
	}
}

func TestResponsesToolCallRoundTrip(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	tools := []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
		Name: "get_weather", Strict: openai.Bool(false),
		Parameters: map[string]any{"type": "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}
	r1, sid := respond(t, c, true, responses.ResponseNewParams{Model: gptModel, Tools: tools,
		Input: textInput("What is the weather in Paris?")})
	var call *responses.ResponseFunctionToolCall
	for _, it := range r1.Output {
		if it.Type == "function_call" {
			fc := it.AsFunctionCall()
			call = &fc
		}
	}
	if call == nil || call.Name != "get_weather" || call.Arguments != `{"city":"Paris"}` {
		t.Fatalf("no function call in %+v", r1.Output)
	}

	out := responses.ResponseInputItemParamOfFunctionCallOutput("18C and sunny")
	out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	r2, sid2 := respond(t, c, true, responses.ResponseNewParams{Model: gptModel, Tools: tools,
		PreviousResponseID: openai.String(r1.ID),
		Input: responses.ResponseNewParamsInputUnion{
			OfInputItemList: responses.ResponseInputParam{out}}})
	if sid2 != sid || r2.OutputText() != "It is 18°C and sunny in Paris." {
		t.Fatalf("answer %q in session %s (want %s)", r2.OutputText(), sid2, sid)
	}
}

func TestResponsesErrors(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	for _, tc := range []struct {
		name   string
		params responses.ResponseNewParams
		status int
		code   string
	}{
		{"an unknown previous response is not found", responses.ResponseNewParams{
			Model: gptModel, Input: textInput("hi"),
			PreviousResponseID: openai.String("resp_nosuch")}, 404,
			"previous_response_not_found"},
		{"an unknown model is not found", responses.ResponseNewParams{Model: "nope-1",
			Input: textInput("hi")}, 404, "model_not_found"},
		{"background is refused", responses.ResponseNewParams{Model: gptModel,
			Input: textInput("hi"), Background: openai.Bool(true)}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Responses.New(context.Background(), tc.params)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status ||
				tc.code != "" && apiErr.Code != tc.code {
				t.Fatalf("got %v, want %d %q", err, tc.status, tc.code)
			}
		})
	}
}

func TestConversations(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	ctx := context.Background()
	conv, err := c.Conversations.New(ctx, conversations.ConversationNewParams{
		Items: []responses.ResponseInputItemUnionParam{
			responses.ResponseInputItemParamOfMessage("My name is Ada.", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfMessage("Hello Ada.", responses.EasyInputMessageRoleAssistant),
		},
		Metadata: map[string]string{"topic": "names"}})
	if err != nil || !strings.HasPrefix(conv.ID, "conv_") ||
		!strings.Contains(conv.RawJSON(), `"topic":"names"`) {
		t.Fatalf("create conversation: %v %+v", err, conv)
	}

	in := responses.ResponseNewParamsConversationUnion{OfString: openai.String(conv.ID)}
	r1, sid := respond(t, c, false, responses.ResponseNewParams{Model: gptModel,
		Conversation: in, Input: textInput("What is my name?")})
	if r1.Conversation.ID != conv.ID {
		t.Fatalf("response names conversation %q", r1.Conversation.ID)
	}
	_, sid2 := respond(t, c, true, responses.ResponseNewParams{Model: gptModel,
		Conversation: in, Input: textInput("Spell it.")})
	if sid2 != sid {
		t.Fatalf("second response of the conversation in session %s, not %s", sid2, sid)
	}
	body := string(n.bytes.last(t, "/v1/responses"))
	if strings.Contains(body, "Ada") {
		t.Fatal("a response in a conversation re-sent its items")
	}

	if _, err := c.Conversations.Items.New(ctx, conv.ID, conversations.ItemNewParams{
		Items: []responses.ResponseInputItemUnionParam{responses.ResponseInputItemParamOfMessage(
			"Thanks.", responses.EasyInputMessageRoleUser)}}); err != nil {
		t.Fatalf("add items: %v", err)
	}
	page, err := c.Conversations.Items.List(ctx, conv.ID, conversations.ItemListParams{
		Order: conversations.ItemListParamsOrderAsc})
	if err != nil {
		t.Fatalf("list items: %v", err)
	}
	var roles []string
	for _, it := range page.Data {
		roles = append(roles, it.Role)
	}
	want := "user assistant user assistant user assistant user"
	if strings.Join(roles, " ") != want {
		t.Fatalf("items by role: %v, want %s", roles, want)
	}
	if got, err := c.Conversations.Get(ctx, conv.ID); err != nil || got.ID != conv.ID {
		t.Fatalf("get conversation: %v", err)
	}
}

func TestOpenAIAPIAuthenticatesWithTheTenantsKey(t *testing.T) {
	n := startAPINode(t)
	n.tenants = finops.NewTenants(n.kv)
	ctx := context.Background()
	keys := map[string]string{}
	for _, tenant := range []string{"acme", "globex"} {
		if _, err := n.tenants.Create(ctx, tenant); err != nil {
			t.Fatal(err)
		}
		key, _, err := n.tenants.IssueKey(ctx, tenant, "test")
		if err != nil {
			t.Fatal(err)
		}
		keys[tenant] = key
	}
	n.restart()

	r1, _ := respond(t, n.clientWithKey(keys["acme"]), false, responses.ResponseNewParams{
		Model: gptModel, Input: textInput("Hello.")})

	for _, tc := range []struct {
		name   string
		key    string
		status int
		code   string
	}{
		{"a wrong key is refused", "sk-wrong", 401, "invalid_api_key"},
		{"another tenant cannot chain on the response", keys["globex"], 404,
			"previous_response_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := n.clientWithKey(tc.key)
			_, err := c.Responses.New(ctx, responses.ResponseNewParams{
				Model: gptModel, Input: textInput("Next."),
				PreviousResponseID: openai.String(r1.ID)})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status ||
				apiErr.Code != tc.code {
				t.Fatalf("got %v, want %d %s", err, tc.status, tc.code)
			}
		})
	}
	// The owner's key chains on.
	respond(t, n.clientWithKey(keys["acme"]), false, responses.ResponseNewParams{
		Model: gptModel, Input: textInput("Next."), PreviousResponseID: openai.String(r1.ID)})
}
