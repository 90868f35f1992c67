package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

func TestLoadRepliesReportsTheBadLine(t *testing.T) {
	good := `{"id":"a","messages":[{"role":"user","content":"hi"},` +
		`{"role":"assistant","content":"hello"}]}`
	tests := []struct {
		name    string
		content string
		want    error
		where   string
	}{
		{"a line that is not JSON", good + "\n{not json\n", ErrBadReplies, "line 2"},
		{"a message with an unknown role",
			"\n" + `{"messages":[{"role":"robot","content":"x"}]}`, ErrBadReplies, "line 2"},
		{"a line without messages", good + "\n" + `{"id":"b"}`, ErrBadReplies, "line 2"},
		{"content that is a number",
			`{"messages":[{"role":"user","content":3}]}`, ErrBadReplies, "line 1"},
		{"a line over the limit", good + "\n" + strings.Repeat("x", MaxRepliesLine+1),
			ErrRepliesLineTooLong, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "conv.jsonl", tt.content)
			_, err := LoadReplies(path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), path+" "+tt.where) {
				t.Errorf("error %q does not name %s %s", err, path, tt.where)
			}
		})
	}
}

func TestLoadRepliesReadsEveryDataFile(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(dataDir(t), "conversations", "*.jsonl"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no conversation files: %v", err)
	}
	replies, err := LoadReplies(paths...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if replies.Len() < 500 {
		t.Errorf("%d replies recorded from %d files, want hundreds", replies.Len(), len(paths))
	}
}

func TestRecordedRepliesMatchThePathThenTheLastMessage(t *testing.T) {
	path := writeFile(t, "conv.jsonl", strings.Join([]string{
		`{"id":"1","messages":[{"role":"system","content":"be brief"},` +
			`{"role":"user","content":"hi"},{"role":"assistant","content":"A"},` +
			`{"role":"user","content":[{"type":"text","text":"again"}]},` +
			`{"role":"assistant","content":"B"}]}`,
		`{"id":"2","messages":[{"role":"user","content":"again"},` +
			`{"role":"assistant","content":"C"}]}`,
	}, "\n"))
	replies, err := LoadReplies(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	srv := startServer(t, Options{Replies: replies})
	tests := []struct {
		name string
		msgs []map[string]any
		want string
	}{
		{"the exact path of conversation 1", []map[string]any{chatMsg("user", "hi"),
			chatMsg("assistant", "A"), chatMsg("user", "again")}, "B"},
		{"the exact path of conversation 2", []map[string]any{chatMsg("user", "again")}, "C"},
		{"an unknown path falls back to the first reply to its last message",
			[]map[string]any{chatMsg("user", "hello"), chatMsg("assistant", "A"),
				chatMsg("user", "again")}, "B"},
		{"a first message alone", []map[string]any{chatMsg("user", "hi")}, "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sendChat(t, srv, "k", chatReq(gpt, tt.msgs...))
			if got := *c.Choices[0].Message.Content; got != tt.want {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
			m := sendMessages(t, srv, "k", messagesReq(sonnet, nil, chatToMessages(tt.msgs)...))
			if got := m.text(); got != tt.want {
				t.Errorf("messages answer %q, want %q", got, tt.want)
			}
		})
	}
}

// chatToMessages turns plain chat messages into Messages API messages.
func chatToMessages(msgs []map[string]any) []map[string]any {
	var out []map[string]any
	for _, m := range msgs {
		out = append(out, msg(m["role"].(string), text(m["content"].(string))))
	}
	return out
}
