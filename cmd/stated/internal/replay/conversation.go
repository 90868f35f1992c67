// Package replay plays recorded conversations against a stated server, one session
// per conversation, and measures what the server's way of talking to the provider
// cost and saved against a stateless client.
package replay

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/stated-dev/stated/transport/wire"
)

// maxLine bounds one conversation line of a JSONL file.
const maxLine = 64 << 20

// Conversation is one recorded conversation in OpenAI chat form.
type Conversation struct {
	ID       string        `json:"id"`
	Messages []ChatMessage `json:"messages"`
	Tools    []ChatTool    `json:"tools,omitempty"`
	// File and Line say where the conversation was read.
	File string `json:"-"`
	Line int    `json:"-"`
}

// ChatMessage is a message of the OpenAI chat format.
type ChatMessage struct {
	Role       string         `json:"role"`
	Content    ChatContent    `json:"content"`
	ToolCalls  []ChatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

// ChatContent is a message's content: a string, an array of text parts, or null.
type ChatContent string

// UnmarshalJSON accepts a string, null, or an array of {"type":"text","text":...}
// parts, whose texts are joined.
func (c *ChatContent) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != nil {
			*c = ChatContent(*s)
		}
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("content is neither a string, null nor an array of parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Text)
	}
	*c = ChatContent(sb.String())
	return nil
}

// ChatToolCall is a tool call of an assistant message.
type ChatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// ChatTool is a tool definition in the OpenAI chat format.
type ChatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// LoadFiles reads conversations from OpenAI chat JSONL files, one per line. A line
// that does not parse is an error naming its file and line.
func LoadFiles(paths ...string) ([]Conversation, error) {
	var all []Conversation
	for _, p := range paths {
		convs, err := loadFile(p)
		if err != nil {
			return nil, err
		}
		all = append(all, convs...)
	}
	return all, nil
}

func loadFile(path string) ([]Conversation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	var out []Conversation
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Conversation
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("replay: %s:%d: %w", path, n, err)
		}
		c.File, c.Line = path, n
		if c.ID == "" {
			c.ID = fmt.Sprintf("%s:%d", path, n)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("replay: %s: %w", path, err)
	}
	return out, nil
}

// system returns the conversation's leading system message, if any, and the
// messages after it.
func (c *Conversation) system() (string, []ChatMessage) {
	if len(c.Messages) > 0 && c.Messages[0].Role == "system" {
		return string(c.Messages[0].Content), c.Messages[1:]
	}
	return "", c.Messages
}

func (c *Conversation) wireTools() []wire.Tool {
	out := make([]wire.Tool, 0, len(c.Tools))
	for _, t := range c.Tools {
		out = append(out, wire.Tool{Name: t.Function.Name, Description: t.Function.Description,
			InputSchema: t.Function.Parameters})
	}
	return out
}

// step is one thing a client does that the model answers: a user turn, or the
// recorded results of the last answer's tool calls.
type step struct {
	user    string        // the user turn's text; empty for results
	results []ChatMessage // the recorded tool messages
}

// steps returns the conversation as the steps a client replays, in order. Blank
// user turns are skipped; recorded answers are the server's to give.
func (c *Conversation) steps() []step {
	_, msgs := c.system()
	var out []step
	for i := 0; i < len(msgs); {
		switch msgs[i].Role {
		case "user":
			if text := string(msgs[i].Content); strings.TrimSpace(text) != "" {
				out = append(out, step{user: text})
			}
			i++
		case "tool":
			j := i
			for j < len(msgs) && msgs[j].Role == "tool" {
				j++
			}
			out = append(out, step{results: msgs[i:j]})
			i = j
		default:
			i++
		}
	}
	return out
}

// assistantTurns counts the recorded answers of the conversation.
func (c *Conversation) assistantTurns() int {
	n := 0
	for _, m := range c.Messages {
		if m.Role == "assistant" {
			n++
		}
	}
	return n
}
