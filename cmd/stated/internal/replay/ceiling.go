package replay

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/stated-dev/stated/providers"
)

// The ceiling is the largest share of prompt tokens that any layout could have
// read from the cache, for the conversations as a stateless client sends them
// (the whole conversation each time, in the provider's fixed order: tools,
// system, messages):
//
//	ceiling = sum over requests of R(request) / sum over requests of P(request)
//
// where P is the request's prompt tokens and R the longest prefix of it, ending
// at a content block boundary (Anthropic reads at block boundaries), that some
// earlier request of the run sent too, any conversation's, provided it is at
// least the model's minimum cacheable length; for OpenAI, R is rounded down to
// its 128-token steps. Requests are ordered step by step: every conversation's
// first request, then every second one, and so on, as the replay sends them.
//
// No layout can read more: what no earlier request sent is in no cache, and a
// cache holds nothing shorter than the minimum. The ceiling assumes nothing
// expires and every block boundary was written, so it is an upper bound that a
// real layout approaches but, with four breakpoints per request and entries that
// expire, need not reach. Tokens are local counts with the framing the provider
// adds per block and message estimated as the simulator charges it.

// Local estimates of Anthropic's framing: per block, and per message on its
// first block.
const (
	ceilingBlockTokens   = 2
	ceilingMessageTokens = 3
	openAIStep           = 128
)

// ceilingRequest is one request as a chain of blocks: each block's digest names
// the prompt up to its end, and ends[i] is the tokens up to the end of block i.
// head is the number of blocks of tools and system; fresh the tokens the request
// adds after the previous one of its conversation (the previous answer and the new
// turn); output the tokens of the answer to it.
type ceilingRequest struct {
	digests [][16]byte
	ends    []int
	head    int
	fresh   int
	output  int
}

// ceilingOf returns the request a stateless client sends with tools and msgs (the
// system prompt, if any, first among them).
func ceilingOf(model string, tools []ChatTool, msgs []chatMsg) ceilingRequest {
	var r ceilingRequest
	h := sha256.Sum256([]byte(model))
	prev := h[:16]
	total := 0
	add := func(tokens int, parts ...string) {
		d := sha256.New()
		d.Write(prev)
		for _, p := range parts {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(p)))
			d.Write(n[:])
			d.Write([]byte(p))
		}
		var out [16]byte
		copy(out[:], d.Sum(nil))
		prev = out[:]
		total += tokens + ceilingBlockTokens
		r.digests = append(r.digests, out)
		r.ends = append(r.ends, total)
	}
	for _, t := range tools {
		f := t.Function
		add(count(f.Name)+count(f.Description)+count(string(f.Parameters)), "tool",
			f.Name, f.Description, string(f.Parameters))
	}
	r.head = len(tools)
	prevRole := ""
	for _, m := range msgs {
		text, _ := m.Content.(string)
		first := ceilingMessageTokens
		if m.Role == "tool" && prevRole == "tool" || m.Role == "system" {
			first = 0
		}
		switch {
		case m.Role == "assistant":
			if text != "" {
				add(count(text)+first, "assistant", text)
				first = 0
			}
			for _, c := range m.ToolCalls {
				add(count(c.Function.Name)+count(c.Function.Arguments)+first, "call",
					c.ID, c.Function.Name, c.Function.Arguments)
				first = 0
			}
		default:
			add(count(text)+first, m.Role, m.ToolCallID, text)
		}
		if m.Role == "system" {
			r.head = len(r.digests)
		}
		prevRole = m.Role
	}
	return r
}

func count(s string) int { return providers.CountTokens(s) }

// ceilingShare computes the ceiling of requests, given in the order they were
// sent, for a cache that holds nothing shorter than minCache tokens. With openai
// set, reads come in 128-token steps.
func ceilingShare(requests []ceilingRequest, minCache int, openai bool) float64 {
	seen := make(map[[16]byte]bool)
	read, total := 0, 0
	for _, r := range requests {
		if len(r.ends) == 0 {
			continue
		}
		total += r.ends[len(r.ends)-1]
		hit := 0
		for i := len(r.digests) - 1; i >= 0; i-- {
			if seen[r.digests[i]] {
				hit = r.ends[i]
				break
			}
		}
		if openai {
			hit = hit / openAIStep * openAIStep
		}
		if hit >= minCache {
			read += hit
		}
		for _, d := range r.digests {
			seen[d] = true
		}
	}
	if total == 0 {
		return 0
	}
	return float64(read) / float64(total)
}

// The floor is the least any server could pay for the same conversations and
// answers, however it lays them out:
//
//	floor = sum over requests of H + N*input + O*output
//
// where N is the tokens the request adds to the conversation, the previous answer
// and the new turn (each must reach the model at least once, at no less than the
// input price), O the answer's
// output tokens, and H the tools and system prompt, which every request must
// carry: at the input price when only one request of the run has them, else
// written once at the cache write price and read by every later request. It
// assumes a server that keeps nothing of the past but the newest turn, at no
// cost: no real layout gets there, which is what makes it a floor.

// priceRates are a model's prices per token.
type priceRates struct{ input, write, read, output float64 }

// floorCost works out the floor of requests at r.
func floorCost(reqs []ceilingRequest, r priceRates) float64 {
	uses := make(map[[16]byte]int)
	for _, q := range reqs {
		if q.head > 0 {
			uses[q.digests[q.head-1]]++
		}
	}
	seen := make(map[[16]byte]bool)
	total := 0.0
	for _, q := range reqs {
		if len(q.ends) == 0 {
			continue
		}
		head := 0
		if q.head > 0 {
			head = q.ends[q.head-1]
			d := q.digests[q.head-1]
			switch {
			case uses[d] == 1:
				total += float64(head) * r.input
			case !seen[d]:
				total += float64(head) * r.write
			default:
				total += float64(head) * r.read
			}
			seen[d] = true
		}
		total += float64(q.fresh)*r.input + float64(q.output)*r.output
	}
	return total
}
