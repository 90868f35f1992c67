package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/stated-dev/stated/providers"
)

// MaxRepliesLine is the longest line LoadReplies accepts, in bytes.
const MaxRepliesLine = 16 << 20

// Replies are recorded assistant replies, found by the conversation that led to
// them. A Replies is read-only once loaded and safe for concurrent use. A nil
// *Replies holds nothing.
type Replies struct {
	// byPath keys a reply by the digest of every user and tool content before
	// it, in order: the exact path through a recorded conversation.
	byPath map[digest]reply
	// byLast keys a reply by the content of the last user or tool message before
	// it; the first recorded occurrence wins.
	byLast map[string]reply
	// byLastAll holds every recorded occurrence of a last content, with the
	// inputs before it, for requests whose earlier inputs a server changed
	// (summarized or shortened): see lookup.
	byLastAll map[string][]occurrence
}

// occurrence is one recorded reply with the inputs that led to it.
type occurrence struct {
	inputs []digest
	rep    reply
}

// reply is one recorded assistant message: text, tool calls or both.
type reply struct {
	text  string
	calls []providers.ToolCall
}

// recordedConversation is one line of a replies file.
type recordedConversation struct {
	ID       string          `json:"id"`
	Messages []chatMessage   `json:"messages"`
	Tools    json.RawMessage `json:"tools"`
}

// LoadReplies reads conversations in OpenAI chat JSONL (one conversation a line:
// {"id","messages":[...],"tools"?:[...]}) and records every assistant message
// that has text or tool calls. Blank lines are skipped.
//
// It returns an error wrapping ErrBadReplies for a line that does not parse, and
// ErrRepliesLineTooLong for a line over MaxRepliesLine bytes; both name the file
// and the line. A file that cannot be read yields the os error, wrapped.
func LoadReplies(paths ...string) (*Replies, error) {
	r := &Replies{byPath: make(map[digest]reply), byLast: make(map[string]reply),
		byLastAll: make(map[string][]occurrence)}
	for _, path := range paths {
		if err := r.loadFile(path); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Len returns how many distinct conversation paths have a recorded reply.
func (r *Replies) Len() int {
	if r == nil {
		return 0
	}
	return len(r.byPath)
}

func (r *Replies) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sim: load replies: %w", err)
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), MaxRepliesLine)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if err := r.record(raw); err != nil {
			return fmt.Errorf("%w: %s line %d: %v", ErrBadReplies, path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: %s line %d", ErrRepliesLineTooLong, path, line+1)
		}
		return fmt.Errorf("sim: load replies: %s: %w", path, err)
	}
	return nil
}

// record parses one conversation and records its assistant replies.
func (r *Replies) record(raw []byte) error {
	var conv recordedConversation
	if err := json.Unmarshal(raw, &conv); err != nil {
		return err
	}
	if len(conv.Messages) == 0 {
		return errors.New("no messages")
	}
	var inputs []string
	for i, m := range conv.Messages {
		text, err := contentText(m.Content)
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		switch m.Role {
		case "system", "developer":
		case "user", "tool":
			inputs = append(inputs, text)
		case "assistant":
			r.add(inputs, recordedReply(text, m.ToolCalls))
		default:
			return fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
	}
	return nil
}

func recordedReply(text string, calls []chatToolCall) reply {
	rep := reply{text: text}
	for _, c := range calls {
		rep.calls = append(rep.calls, providers.ToolCall{
			ID:        c.ID,
			Name:      c.Function.Name,
			Arguments: c.Function.Arguments,
		})
	}
	return rep
}

// add records rep under both keys unless it is empty, there are no inputs before
// it, or a reply is already recorded under the key.
func (r *Replies) add(inputs []string, rep reply) {
	if (rep.text == "" && len(rep.calls) == 0) || len(inputs) == 0 {
		return
	}
	path := hashFields(inputs...)
	if _, ok := r.byPath[path]; !ok {
		r.byPath[path] = rep
	}
	last := inputs[len(inputs)-1]
	if _, ok := r.byLast[last]; !ok {
		r.byLast[last] = rep
	}
	r.byLastAll[last] = append(r.byLastAll[last], occurrence{inputs: digests(inputs), rep: rep})
}

func digests(inputs []string) []digest {
	out := make([]digest, len(inputs))
	for i, in := range inputs {
		out[i] = hashFields(in)
	}
	return out
}

// closest returns, among the recorded occurrences of the request's last input,
// the one whose inputs agree with the request's at the most positions counted
// from the end; the first recorded wins a tie. A request whose older inputs were
// folded into a summary or shortened still finds the reply of its own place in
// its own conversation, not that of another place where the same text came.
func (r *Replies) closest(inputs []string) (reply, bool) {
	occs := r.byLastAll[inputs[len(inputs)-1]]
	if len(occs) < 2 {
		return reply{}, false
	}
	have := digests(inputs)
	best, bestScore := -1, -1
	for i, o := range occs {
		score := 0
		for k := 1; k <= len(have) && k <= len(o.inputs); k++ {
			if have[len(have)-k] == o.inputs[len(o.inputs)-k] {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return occs[best].rep, true
}

// lookup finds the reply to a conversation whose user and tool contents are
// inputs: by the exact path first, then by the last content, at the recorded
// place that agrees best with the inputs before it.
func (r *Replies) lookup(inputs []string) (reply, bool) {
	if r == nil || len(inputs) == 0 {
		return reply{}, false
	}
	if rep, ok := r.byPath[hashFields(inputs...)]; ok {
		return rep, true
	}
	if rep, ok := r.closest(inputs); ok {
		return rep, true
	}
	rep, ok := r.byLast[inputs[len(inputs)-1]]
	return rep, ok
}
