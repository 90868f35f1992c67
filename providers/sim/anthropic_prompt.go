package sim

import (
	"strings"
	"time"
)

// Token overheads of the Anthropic prompt layout. The provider wraps every block
// and every message in a few tokens of its own; the exact figures are not
// published, so the simulator charges these small fixed amounts, the same on
// every request, so that one prompt always counts the same.
const (
	blockOverhead   = 2 // per block: tool definition, system block, content block
	messageOverhead = 3 // per message, charged on its first block
)

// promptBlock is one block of an Anthropic prompt in prefix order: tools, system,
// then every content block of every message.
type promptBlock struct {
	tokens int
	prefix digest        // the whole prompt up to and including this block
	mark   *cacheControl // the block's breakpoint, nil when it has none
}

// buildPrompt lays the request out as prompt blocks. The prefix digests start
// from the model, so entries of different models never meet. A breakpoint does
// not change a block's digest: moving a breakpoint does not change the prefix.
// The top-level cache_control becomes a breakpoint on the last block.
func buildPrompt(p *parsedRequest, counter *tokenCounter) []promptBlock {
	var blocks []promptBlock
	prev := hashFields("anthropic", p.model)
	add := func(tokens int, mark *cacheControl, fields ...string) {
		prev = chainDigest(prev, fields...)
		blocks = append(blocks, promptBlock{tokens: tokens + blockOverhead, prefix: prev,
			mark: mark})
	}

	count := counter.count
	for _, t := range p.tools {
		schema := compactJSON(t.InputSchema)
		add(count(t.Name)+count(t.Description)+count(schema), t.CacheControl,
			"tool", t.Type, t.Name, t.Description, schema)
	}
	for _, b := range p.system {
		add(count(b.Text), b.CacheControl, "system", b.Text)
	}
	for _, m := range p.messages {
		for j, b := range m.blocks {
			tokens, fields := blockContent(b, count)
			if j == 0 {
				tokens += messageOverhead
				fields = append(fields, "start:"+m.role)
			}
			add(tokens, b.CacheControl, fields...)
		}
	}

	if p.auto != nil && len(blocks) > 0 && blocks[len(blocks)-1].mark == nil {
		blocks[len(blocks)-1].mark = p.auto
	}
	return blocks
}

// blockContent returns the tokens of a content block and the fields that stand
// for it in the prefix digest.
func blockContent(b contentBlock, count func(string) int) (int, []string) {
	switch b.Type {
	case "tool_use":
		input := compactJSON(b.Input)
		return count(b.Name) + count(input), []string{"tool_use", b.ID, b.Name, input}
	case "tool_result":
		text, _ := toolResultText(b.Content) // checked by parseMessages
		isErr := "ok"
		if b.IsError {
			isErr = "error"
		}
		return count(text), []string{"tool_result", b.ToolUseID, isErr, text}
	default:
		return count(b.Text), []string{"text", b.Text}
	}
}

// checkBreakpoints enforces the limits on cache_control: at most
// rules.MaxBreakpoints blocks with cache_control, the top-level one included;
// type "ephemeral"; a ttl the model supports; no 1h entry after a 5m one
// (Anthropic: "cache entries with longer TTL must appear before shorter TTLs").
func checkBreakpoints(p *parsedRequest, rules Rules) *apiError {
	var marks []*cacheControl
	for _, t := range p.tools {
		marks = appendMark(marks, t.CacheControl)
	}
	for _, b := range p.system {
		marks = appendMark(marks, b.CacheControl)
	}
	for _, m := range p.messages {
		for _, b := range m.blocks {
			marks = appendMark(marks, b.CacheControl)
		}
	}
	marks = appendMark(marks, p.auto)
	if len(marks) > rules.MaxBreakpoints {
		return invalidRequest("A maximum of %d blocks with cache_control may be provided. "+
			"Found %d.", rules.MaxBreakpoints, len(marks))
	}

	seen5m := false
	for _, m := range marks {
		if m.Type != "ephemeral" {
			return invalidRequest("cache_control.type: Input should be 'ephemeral'")
		}
		switch {
		case m.TTL == "" || m.TTL == "5m":
			seen5m = true
		case m.TTL == "1h" && rules.LongTTL > 0:
			if seen5m {
				return invalidRequest("a ttl='1h' cache_control block must not come after " +
					"a ttl='5m' cache_control block. Note that blocks are processed in the " +
					"following order: `tools`, `system`, `messages`.")
			}
		default:
			return invalidRequest("cache_control.ttl: Input should be '5m' or '1h'")
		}
	}
	return nil
}

func appendMark(marks []*cacheControl, m *cacheControl) []*cacheControl {
	if m == nil {
		return marks
	}
	return append(marks, m)
}

// markTTL returns the lifetime of the entry a breakpoint writes and whether it
// is the long one.
func markTTL(m *cacheControl, rules Rules) (time.Duration, bool) {
	if m.TTL == "1h" && rules.LongTTL > 0 {
		return rules.LongTTL, true
	}
	return rules.ShortTTL, false
}

// messagesHistory reduces a request to its conversation: user text, tool
// results, assistant text and tool calls, in order.
func messagesHistory(p *parsedRequest) history {
	var h history
	for _, m := range p.messages {
		var text strings.Builder
		role := turnUser
		if m.role == "assistant" {
			role = turnAssistant
		}
		flush := func() {
			if text.Len() > 0 {
				h = append(h, turn{role: role, text: text.String()})
				text.Reset()
			}
		}
		for _, b := range m.blocks {
			switch b.Type {
			case "text":
				text.WriteString(b.Text)
			case "tool_use":
				flush()
				h = append(h, turn{role: turnCall, text: b.Name + "\n" + compactJSON(b.Input)})
			case "tool_result":
				flush()
				result, _ := toolResultText(b.Content)
				h = append(h, turn{role: turnTool, text: result})
			}
		}
		flush()
	}
	return h
}
