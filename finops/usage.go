package finops

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UsageFormat names the shape of a provider's usage object.
type UsageFormat string

// The usage formats ParseUsage reads.
const (
	// UsageAnthropic is the Messages API's usage: input_tokens (uncached),
	// cache_creation_input_tokens with its split cache_creation
	// {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens},
	// cache_read_input_tokens, output_tokens. The categories are disjoint.
	UsageAnthropic UsageFormat = "anthropic"
	// UsageOpenAIChat is the Chat Completions API's usage: prompt_tokens,
	// prompt_tokens_details.cached_tokens (a part of prompt_tokens),
	// completion_tokens (reasoning included).
	UsageOpenAIChat UsageFormat = "openai-chat"
	// UsageOpenAIResponses is the Responses API's usage: input_tokens,
	// input_tokens_details.cached_tokens (a part of input_tokens), output_tokens
	// (reasoning included).
	UsageOpenAIResponses UsageFormat = "openai-responses"
)

// maxUsageBytes bounds a usage object.
const maxUsageBytes = 64 << 10

// ParseUsage reads a provider's usage object, as found in a response body, in the
// last event of a stream, or in a provider's usage export, into disjoint token
// categories. The same object gives the same Tokens wherever it came from, so a
// streamed call and the same call answered whole are booked alike. It returns
// ErrNegativeTokens for a negative count and an error for an unknown format,
// malformed JSON or an object over 64 KiB.
func ParseUsage(format UsageFormat, raw []byte) (Tokens, error) {
	if len(raw) > maxUsageBytes {
		return Tokens{}, fmt.Errorf("finops: usage object over %d bytes", maxUsageBytes)
	}
	var tok Tokens
	var err error
	switch format {
	case UsageAnthropic:
		tok, err = parseAnthropicUsage(raw)
	case UsageOpenAIChat, UsageOpenAIResponses:
		tok, err = parseOpenAIUsage(format, raw)
	default:
		return Tokens{}, fmt.Errorf("finops: unknown usage format %.40q", format)
	}
	if err != nil {
		return Tokens{}, err
	}
	for _, n := range []int{tok.Input, tok.CacheWrite5m, tok.CacheWrite1h, tok.CacheRead,
		tok.Output} {
		if n < 0 {
			return Tokens{}, fmt.Errorf("%w: %+v", ErrNegativeTokens, tok)
		}
	}
	return tok, nil
}

func decodeUsage(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("finops: usage object: %w", err)
	}
	return nil
}

func parseAnthropicUsage(raw []byte) (Tokens, error) {
	var u struct {
		InputTokens              int `json:"input_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
		OutputTokens             int `json:"output_tokens"`
		CacheCreation            *struct {
			Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
			Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
		} `json:"cache_creation"`
	}
	if err := decodeUsage(raw, &u); err != nil {
		return Tokens{}, err
	}
	tok := Tokens{Input: u.InputTokens, CacheRead: u.CacheReadInputTokens,
		Output: u.OutputTokens, CacheWrite5m: u.CacheCreationInputTokens}
	if c := u.CacheCreation; c != nil && c.Ephemeral5m+c.Ephemeral1h > 0 {
		// The split is authoritative; what it leaves of the total is 5-minute.
		tok.CacheWrite1h = c.Ephemeral1h
		tok.CacheWrite5m = max(u.CacheCreationInputTokens-c.Ephemeral1h, c.Ephemeral5m)
	}
	return tok, nil
}

func parseOpenAIUsage(format UsageFormat, raw []byte) (Tokens, error) {
	type details struct {
		CachedTokens int `json:"cached_tokens"`
	}
	var u struct {
		PromptTokens       int      `json:"prompt_tokens"`
		CompletionTokens   int      `json:"completion_tokens"`
		PromptDetails      *details `json:"prompt_tokens_details"`
		InputTokens        int      `json:"input_tokens"`
		OutputTokens       int      `json:"output_tokens"`
		InputTokensDetails *details `json:"input_tokens_details"`
	}
	if err := decodeUsage(raw, &u); err != nil {
		return Tokens{}, err
	}
	prompt, output, d := u.PromptTokens, u.CompletionTokens, u.PromptDetails
	if format == UsageOpenAIResponses {
		prompt, output, d = u.InputTokens, u.OutputTokens, u.InputTokensDetails
	}
	cached := 0
	if d != nil {
		cached = min(max(d.CachedTokens, 0), max(prompt, 0))
	}
	return Tokens{Input: prompt - cached, CacheRead: cached, Output: output}, nil
}
