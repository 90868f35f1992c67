package openai

import "encoding/json"

// wireError is the error object of an error body or an error chunk. Code is a
// string on the OpenAI API but a number or null on some compatible servers.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// errorType is the error's type, or its code when the type is empty.
func (w *wireError) errorType() string {
	if w.Type != "" {
		return w.Type
	}
	var code string
	if json.Unmarshal(w.Code, &code) == nil {
		return code
	}
	if len(w.Code) > 0 && string(w.Code) != "null" {
		return string(w.Code)
	}
	return ""
}

// parseError takes the type and message of an error body,
// {"error":{"message":...,"type":...,"code":...}}, and reports whether the body
// had that shape.
func parseError(raw []byte) (typ, msg string, ok bool) {
	var body struct {
		Error *wireError `json:"error"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Error == nil {
		return "", "", false
	}
	typ, msg = body.Error.errorType(), body.Error.Message
	return typ, msg, typ != "" || msg != ""
}
