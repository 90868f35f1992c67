package sim

import (
	"encoding/json"
	"net/http"

	"github.com/stated-dev/stated/providers"
)

// api is one of the simulated provider endpoints.
type api int

const (
	apiMessages api = iota + 1
	apiChat
	apiResponses
)

func (a api) path() string {
	switch a {
	case apiMessages:
		return messagesPath
	case apiChat:
		return chatPath
	}
	return responsesPath
}

// exchange is one request to a provider endpoint, from its arrival to its
// answer: the fault it gets, what is captured of it, and how its errors and
// answers are written in its provider's format.
type exchange struct {
	s     *Server
	api   api
	w     *statusWriter
	r     *http.Request
	fault Fault

	rec      *Capture // nil until captured, and when captures are off
	captured bool
	model    string
	usage    cacheUsage // for the log line
	output   int
}

// begin starts the exchange of a request and picks its fault: the x-sim-fault
// header's, else a draw from the configured rules. A header that does not parse
// gets a 400, and begin returns nil.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, a api) *exchange {
	x := &exchange{s: s, api: a, w: &statusWriter{ResponseWriter: w}, r: r}
	if a == apiMessages {
		w.Header().Set("request-id", newID("req_"))
	} else {
		w.Header().Set("x-request-id", newID("req_"))
	}
	header := r.Header.Get(faultHeader)
	if header == "" {
		x.fault = s.faults.pick()
		return x
	}
	f, err := ParseFault(header)
	if err != nil {
		x.fail(invalidRequest("%s: %v", faultHeader, err))
		x.finish()
		return nil
	}
	if f.Kind != FaultNone {
		x.fault = f
	}
	return x
}

// capture records the request for Captured. Only the first call counts.
func (x *exchange) capture(key string, body []byte, model string, stream bool,
	prefixes []digest) {
	if x.captured {
		return
	}
	x.captured = true
	x.model = model
	hashes := make([]string, len(prefixes))
	for i, d := range prefixes {
		hashes[i] = hexDigest(d)
	}
	x.rec = x.s.captures.add(Capture{
		Time: x.s.clock.Now(), Endpoint: x.api.path(), Model: model,
		KeyHash: hashKey(key), Stream: stream, Breakpoints: len(prefixes),
		PrefixHashes: hashes, Body: body,
	})
}

// finish completes the capture with the status answered and writes the
// request's log line: never content or keys.
func (x *exchange) finish() {
	if !x.captured {
		x.capture("", nil, "", false, nil)
	}
	x.s.captures.setStatus(x.rec, x.w.code(), x.fault.String())
	u := x.usage
	x.s.log.Debug("sim request", "endpoint", x.api.path(), "model", x.model,
		"status", x.w.code(), "fault", x.fault.String(), "input_tokens", u.input,
		"cache_read_tokens", u.read, "cache_write_tokens", u.write5m+u.write1h,
		"output_tokens", x.output)
}

// fail answers e in the endpoint's error format.
func (x *exchange) fail(e *apiError) {
	if x.api == apiMessages {
		writeAnthropicError(x.w, e)
		return
	}
	writeOpenAIError(x.w, e)
}

// injectStatus answers the request's status fault, if it has one, and reports
// whether it did.
func (x *exchange) injectStatus() bool {
	if x.fault.Kind != FaultStatus {
		return false
	}
	e, retryAfter := statusFault(x.api, x.fault, x.model)
	if retryAfter != "" {
		x.w.Header().Set("retry-after", retryAfter)
	}
	if ms := retryAfterMillis(x.fault, e.status); ms != "" {
		x.w.Header().Set("retry-after-ms", ms)
	}
	x.fail(e)
	return true
}

// answer returns the simulated model's answer to a conversation, or an empty
// one under the empty fault.
func (x *exchange) answer(h history, maxTokens int) answer {
	if x.fault.Kind == FaultEmpty {
		return answer{stop: providers.StopEnd}
	}
	a := x.s.answerFor(h, maxTokens)
	x.output = a.outputTokens
	return a
}

// firstToken waits for the latency model: the time to the first token, and for
// a non-streamed answer the time to produce all of it. It reports false when
// the client has gone or the server is closed.
func (x *exchange) firstToken(uncached, output int, stream bool) bool {
	d := x.s.latency.FirstTokenDelay(uncached)
	if !stream {
		d += x.s.latency.OutputDelay(output)
	}
	return x.s.wait(x.r.Context(), d)
}

// writeJSON answers v as a JSON body with status 200, after the request's fault
// has had its say: a stall answers nothing, a cut drops the connection
// halfway, a drip sends the body in small pieces, an error event becomes a 500.
func (x *exchange) writeJSON(v any) {
	body, err := json.Marshal(v)
	if err != nil {
		x.fail(&apiError{status: http.StatusInternalServerError, kind: "api_error",
			message: "could not encode the answer"})
		return
	}
	body = append(body, '\n')
	switch x.fault.Kind {
	case FaultStall:
		x.stall()
		return
	case FaultErrorEvent:
		x.fail(serverError(x.api))
		return
	}
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(http.StatusOK)
	switch x.fault.Kind {
	case FaultCut:
		_, _ = x.w.Write(body[:len(body)/2])
		x.cut()
	case FaultDrip:
		x.drip(body)
	default:
		_, _ = x.w.Write(body) // a failed write means the client has gone
	}
}

// drip writes body in small pieces, the fault's interval apart.
func (x *exchange) drip(body []byte) {
	rc := http.NewResponseController(x.w)
	for len(body) > 0 {
		if !x.s.wait(x.r.Context(), x.fault.Interval) {
			return
		}
		n := min(dripPieceBytes, len(body))
		if _, err := x.w.Write(body[:n]); err != nil {
			return
		}
		_ = rc.Flush()
		body = body[n:]
	}
}

// cut drops the connection without ending the response, as a network failure
// would: what was written is flushed, then the connection is closed. Where the
// connection cannot be taken over (HTTP/2), the response just ends early.
func (x *exchange) cut() {
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

// stall waits until the client gives up or the server is closed. What was
// written before has been flushed already.
func (x *exchange) stall() {
	select {
	case <-x.r.Context().Done():
	case <-x.s.closed:
	}
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code returns the status answered; zero when nothing was.
func (w *statusWriter) code() int { return w.status }
