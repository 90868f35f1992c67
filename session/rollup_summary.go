package session

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stated-dev/stated/providers"
)

// summaryInstructions is the system prompt of the summarizer. It asks for what a
// model needs to go on with the conversation, not for a description of it.
const summaryInstructions = `You keep the running summary of a conversation between a ` +
	`user and an assistant that may call tools. You are given the summary so far, if ` +
	`any, and the next part of the conversation. Write the new summary that replaces ` +
	`both: every fact, decision, name, number, identifier and file path the assistant ` +
	`may need later; what the user asked for and what is still open; the results of ` +
	`tool calls that matter. Leave out greetings and repetition. Write plain prose and ` +
	`lists, in the language of the conversation, addressed to the assistant.`

// summaryInstructionsTokens is the local count of the summarizer's instructions.
var summaryInstructionsTokens = providers.CountTokens(summaryInstructions)

// summaryPromptTokens is the local count of the summarizer's instructions and
// framing, added to the folded turns when its cost is estimated.
var summaryPromptTokens = summaryInstructionsTokens + 32

// Bounds of a summary's length (its max_tokens): about a sixth of what it folds.
const (
	minSummaryTokens = 256
	maxSummaryTokens = 2048
)

// summaryBudget is the max_tokens of a summary of in tokens.
func summaryBudget(in int) int {
	return min(max(in/6, minSummaryTokens), maxSummaryTokens)
}

// Bounds of the transcript the summarizer reads: one tool result keeps its head
// and tail, and the whole transcript its first and last parts, so a summary of a
// long agent run fits any summarizer's window.
const (
	maxResultBytes     = 8 << 10
	maxTranscriptBytes = 256 << 10
)

// summaryResult is a summary the summarizer wrote, with what it cost.
type summaryResult struct {
	text      string
	tokens    int // the local count of text, which the rollup event keeps
	model     string
	usage     providers.Usage
	estimated bool // the provider reported no usage; it was counted locally
}

// summaryInput renders the previous summary and the events to fold as the
// summarizer's input. Tool results the prompt had left out are given as their
// stubs.
func summaryInput(pol *ContextPolicy, events []Event, plan checkpointPlan) string {
	var b strings.Builder
	if plan.prev.summary != "" {
		fmt.Fprintf(&b, "Summary so far:\n%s\n\n", plan.prev.summary)
	}
	b.WriteString("The conversation that follows it:\n")
	names := make(map[string]string)
	for _, i := range plan.fold {
		e := &events[i]
		switch e.Kind {
		case KindUser:
			fmt.Fprintf(&b, "\nUser: %s\n", e.Text)
		case KindAssistant:
			if e.Text != "" {
				fmt.Fprintf(&b, "\nAssistant: %s\n", e.Text)
			}
			for _, c := range e.completeCalls() {
				names[c.ID] = c.Name
				fmt.Fprintf(&b, "\nAssistant called %s with %s\n", c.Name, c.Arguments)
			}
		case KindToolResult:
			text := e.Text
			if plan.prev.elided[e.Seq] {
				text = elidedStub(e, names[e.ToolCallID])
			}
			fmt.Fprintf(&b, "\nResult of %s: %s\n", names[e.ToolCallID],
				clip(text, maxResultBytes))
		}
	}
	return clip(b.String(), maxTranscriptBytes)
}

// clip returns s, or its head and tail around a note of what was cut when it is
// longer than n bytes. Cuts fall on character boundaries.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head, tail := n*3/4, n/4
	for head > 0 && !utf8Start(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8Start(s[start]) {
		start++
	}
	return s[:head] + fmt.Sprintf("\n[... %d bytes cut ...]\n", start-head) + s[start:]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// errEmptySummary means the summarizer answered with nothing.
var errEmptySummary = errors.New("session: the summarizer wrote nothing")

// summarize asks the summary model for the summary of plan. The call is not
// cached: it is made once per rollup.
func (s *Session) summarize(ctx context.Context, plan checkpointPlan,
	input string) (*summaryResult, error) {
	model := s.settings.Context.SummaryModel
	req := &providers.Request{
		Model: model, MaxTokens: plan.budget, System: summaryInstructions,
		Messages: []providers.Message{{Role: providers.RoleUser, Text: input}},
	}
	resp, err := s.mgr.provider.Complete(ctx, req, func(providers.Delta) {})
	if err != nil {
		return nil, fmt.Errorf("session: summary by %s: %w", model, err)
	}
	text := strings.TrimSpace(resp.Text)
	if text == "" {
		return nil, errEmptySummary
	}
	res := &summaryResult{text: text, tokens: providers.CountTokens(text), model: model,
		usage: resp.Usage}
	if resp.Model != "" {
		res.model = resp.Model
	}
	if !resp.UsageReported {
		res.estimated = true
		res.usage = providers.Usage{
			InputTokens:  summaryInstructionsTokens + providers.CountTokens(input),
			OutputTokens: res.tokens, // the text less the white space around it
		}
	}
	return res, nil
}
