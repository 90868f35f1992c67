package anthropic

import "encoding/json"

// parseError takes the type and message of the API's error body,
// {"type":"error","error":{"type":...,"message":...}}, and reports whether the
// body had that shape.
func parseError(raw []byte) (typ, msg string, ok bool) {
	var body struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return "", "", false
	}
	e := body.Error
	return e.Type, e.Message, e.Type != "" || e.Message != ""
}
