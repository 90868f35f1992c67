package sim

import (
	"encoding/binary"
)

// turnRole says who produced a piece of a conversation.
type turnRole string

const (
	turnUser      turnRole = "user"
	turnTool      turnRole = "tool"      // a tool result
	turnAssistant turnRole = "assistant" // assistant text
	turnCall      turnRole = "call"      // an assistant tool call: name and arguments
)

// turn is one piece of a conversation in provider-neutral form. Both endpoints
// reduce a request to its turns, so one conversation finds the same recorded reply
// and the same generated text over either API.
type turn struct {
	role turnRole
	text string
}

// history is a request's conversation, in order, without the system prompt.
type history []turn

// inputs returns the texts of the user and tool turns, in order: what recorded
// replies are keyed by.
func (h history) inputs() []string {
	out := make([]string, 0, len(h))
	for _, t := range h {
		if t.role == turnUser || t.role == turnTool {
			out = append(out, t.text)
		}
	}
	return out
}

// seed returns a number that depends on every turn, to seed generated text.
func (h history) seed() uint64 {
	f := newFieldHasher()
	for _, t := range h {
		f.add(string(t.role), t.text)
	}
	d := f.sum()
	return binary.BigEndian.Uint64(d[:8])
}
