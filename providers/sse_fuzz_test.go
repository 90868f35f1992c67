package providers

import (
	"bytes"
	"testing"
	"testing/iotest"
)

// fuzzMaxLine is small so that the fuzzer reaches the line limit too.
const fuzzMaxLine = 64

func FuzzSSEReader(f *testing.F) {
	seeds := []string{
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
		"data: {\"choices\":[]}\n\ndata: [DONE]\n\n",
		"event: content_block_delta\ndata: {\"delta\":{\"text\":\"hé",
		"data: a\r",
		"data: a\r\n\r",
		"data: a\r\r\n\n",
		"dat",
		"data",
		"data:",
		"event",
		": ping\n\n",
		"id: 1\x002\ndata: x\n\n",
		"\xEF\xBB",
		"\xEF\xBB\xBFdata: bom\n\n",
		"data: " + string(bytes.Repeat([]byte("x"), fuzzMaxLine)) + "\n\n",
		"\n\n\r\r\r\n",
		"data: \xff\xfe\n\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		whole := readAllEvents(t, NewSSEReader(bytes.NewReader(in), fuzzMaxLine))
		oneByte := readAllEvents(t,
			NewSSEReader(iotest.OneByteReader(bytes.NewReader(in)), fuzzMaxLine))
		checkResult(t, "one byte at a time against whole", oneByte, whole)

		ref, refErr := referenceSSE(string(in), fuzzMaxLine)
		checkResult(t, "reference against whole", sseResult{events: ref, err: refErr}, whole)
	})
}
