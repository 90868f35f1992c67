package wire

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeClientFrame(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"a turn decodes", `{"type":"turn","turn_id":"a","text":"hi"}`, true},
		{"white space around the object is fine", " {\"type\":\"ping\"}\n", true},
		{"an unknown field is refused", `{"type":"turn","txt":"hi"}`, false},
		{"a missing type is refused", `{"text":"hi"}`, false},
		{"a type that is not a string is refused", `{"type":1}`, false},
		{"null is refused", `null`, false},
		{"an array is refused", `[{"type":"ping"}]`, false},
		{"two objects are refused", `{"type":"ping"}{"type":"ping"}`, false},
		{"cut JSON is refused", `{"type":"turn","text":"hi`, false},
		{"an empty message is refused", ``, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeClientFrame([]byte(c.in))
			if c.ok && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !c.ok && !errors.Is(err, ErrBadFrame) {
				t.Fatalf("got %v, want ErrBadFrame", err)
			}
		})
	}
}

func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"open","model":"m","system":"s","max_tokens":5,"tools":[{"name":"a","input_schema":{}}]}`,
		`{"type":"resume","session_id":"x","epoch":1,"last_seq":3}`,
		`{"type":"turn","turn_id":"a","text":"hi"}`,
		`{"type":"tool_result","turn_id":"b","tool_call_id":"c","content":"","is_error":true}`,
		`{"type":"turn","turn_id":"a","text":"h`, `{"type":`, `{`, `"`, `{"type":"ping"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeClientFrame(data)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not match ErrBadFrame", err)
			}
			return
		}
		if fr.Type == "" {
			t.Fatal("decoded a frame without a type")
		}
		// What decodes must survive a round trip unchanged.
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := DecodeClientFrame(again)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		b1, _ := json.Marshal(fr2)
		if string(b1) != string(again) {
			t.Fatalf("round trip changed the frame: %s vs %s", again, b1)
		}
	})
}
