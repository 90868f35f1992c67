package finops

import (
	"testing"
)

// FuzzParseUsage holds ParseUsage to its contract on any bytes: an error, or
// token counts that are all non-negative and the same on a second parse.
func FuzzParseUsage(f *testing.F) {
	for _, c := range accountingCases {
		f.Add(string(c.format), c.body)
		f.Add(string(c.format), c.streamed)
	}
	f.Add(string(UsageAnthropic), `{"input_tokens":-1}`)
	f.Add(string(UsageOpenAIChat), `{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}}`)
	f.Add(string(UsageOpenAIResponses), `{"input_tokens":`)
	f.Fuzz(func(t *testing.T, format, raw string) {
		tok, err := ParseUsage(UsageFormat(format), []byte(raw))
		if err != nil {
			return
		}
		if tok.Input < 0 || tok.CacheWrite5m < 0 || tok.CacheWrite1h < 0 || tok.CacheRead < 0 ||
			tok.Output < 0 {
			t.Fatalf("negative counts %+v from %q", tok, raw)
		}
		again, err := ParseUsage(UsageFormat(format), []byte(raw))
		if err != nil || again != tok {
			t.Fatalf("a second parse gave %+v, %v", again, err)
		}
	})
}
