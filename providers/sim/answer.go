package sim

import (
	"github.com/stated-dev/stated/providers"
)

// answer is what the simulated model says, before it is put in a wire format.
type answer struct {
	text         string
	calls        []providers.ToolCall
	stop         providers.StopReason // StopEnd, StopMaxTokens or StopToolUse
	outputTokens int
}

// answerFor returns the answer to a conversation: the recorded reply if there is
// one, else generated text, in either case fitted to maxTokens.
func (s *Server) answerFor(h history, maxTokens int) answer {
	if rep, ok := s.replies.lookup(h.inputs()); ok {
		if a, ok := fitReply(rep, maxTokens); ok {
			return a
		}
	}
	return fitText(generateText(h.seed()), maxTokens)
}

// fitText returns text as an answer, truncated to maxTokens.
func fitText(text string, maxTokens int) answer {
	out, cut := truncateTokens(text, maxTokens)
	a := answer{text: out, stop: providers.StopEnd, outputTokens: providers.CountTokens(out)}
	if cut {
		a.stop = providers.StopMaxTokens
	}
	return a
}

// fitReply fits a recorded reply into maxTokens: text first, truncated if need
// be, then whole tool calls while they fit. A tool call is never cut in half: the
// first one that does not fit is dropped with the rest and the answer stops with
// max_tokens. It reports false when nothing of the reply fits.
func fitReply(rep reply, maxTokens int) (answer, bool) {
	var a answer
	budget := maxTokens
	if rep.text != "" {
		a = fitText(rep.text, maxTokens)
		if a.stop == providers.StopMaxTokens {
			return a, true
		}
		budget -= a.outputTokens
	}
	a.stop = providers.StopEnd
	for _, c := range rep.calls {
		n := callTokens(c)
		if n > budget {
			a.stop = providers.StopMaxTokens
			break
		}
		a.calls = append(a.calls, c)
		a.outputTokens += n
		budget -= n
	}
	if a.text == "" && len(a.calls) == 0 {
		return answer{}, false
	}
	if a.stop == providers.StopEnd && len(a.calls) > 0 {
		a.stop = providers.StopToolUse
	}
	return a, true
}

// callTokens is what a tool call counts as output: its name plus its arguments.
func callTokens(c providers.ToolCall) int {
	return providers.CountTokens(c.Name) + providers.CountTokens(c.Arguments)
}
