package providers

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/dlclark/regexp2"
	"github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// o200kPattern is the pre-tokenizer pattern of o200k_base as tiktoken-go compiles it.
var o200kPattern = strings.Join([]string{
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` +
		`(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` +
		`(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
	`\p{N}{1,3}`,
	` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
	`\s*[\r\n]+`,
	`\s+(?!\S)`,
	`\s+`,
}, "|")

// reference holds tiktoken-go's own o200k_base encoder and pattern, which the
// counts and pieces here must equal.
var reference struct {
	once    sync.Once
	enc     *tiktoken.Tiktoken
	pattern *regexp2.Regexp
	err     error
}

func loadReference(t testing.TB) {
	t.Helper()
	reference.once.Do(func() {
		tiktoken.SetBpeLoader(tiktokenloader.NewOfflineLoader())
		reference.enc, reference.err = tiktoken.GetEncoding(Encoding)
		if reference.err == nil {
			reference.pattern, reference.err = regexp2.Compile(o200kPattern, regexp2.None)
		}
	})
	if reference.err != nil {
		t.Fatalf("loading tiktoken's o200k_base: %v", reference.err)
	}
}

// referenceCount is the length of tiktoken-go's EncodeOrdinary of s.
func referenceCount(t testing.TB, s string) int {
	t.Helper()
	loadReference(t)
	return len(reference.enc.EncodeOrdinary(s))
}

// referencePieces cuts s with tiktoken-go's pattern and engine.
func referencePieces(t testing.TB, s string) []string {
	t.Helper()
	loadReference(t)
	var out []string
	m, err := reference.pattern.FindStringMatch(s)
	for ; m != nil && err == nil; m, err = reference.pattern.FindNextMatch(m) {
		out = append(out, m.String())
	}
	if err != nil {
		t.Fatalf("regexp2: %v", err)
	}
	return out
}

// scannedPieces cuts s with the scanner, after the same UTF-8 repair as count.
func scannedPieces(t testing.TB, s string) []string {
	t.Helper()
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatalf("loading the tokenizer: %v", err)
	}
	s = string([]rune(s))
	var out []string
	for p := 0; p < len(s); {
		e := tk.classes.pieceEnd(s, p)
		if e <= p {
			t.Fatalf("no progress at byte %d of %q", p, s)
		}
		out = append(out, s[p:e])
		p = e
	}
	return out
}

// checkAgainstReference fails if the pieces or the count of s differ from
// tiktoken-go's.
func checkAgainstReference(t testing.TB, s string) {
	t.Helper()
	want, got := referencePieces(t, s), scannedPieces(t, s)
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Fatalf("piece %d of %.200q: got %q, tiktoken %q", i, s, got[i], want[i])
		}
	}
	if len(want) != len(got) {
		t.Fatalf("%.200q: got %d pieces, tiktoken %d", s, len(got), len(want))
	}
	if got, want := CountTokens(s), referenceCount(t, s); got != want {
		t.Fatalf("%.200q: counted %d tokens, tiktoken %d", s, got, want)
	}
}

var countCases = []struct {
	name string
	text string
}{
	{"the empty string has no tokens", ""},
	{"a single letter is one token", "a"},
	{"plain English prose", "The server holds the conversation and streams the answer back."},
	{"contractions in every case", "don't DON'T I'm you'RE we'Ve they'll She'D it's WE'LL I'M"},
	{"apostrophes that are not contractions", "rock 'n' roll, 'quoted', l'été, '' ''s x'"},
	{"contractions after capitals and marks", "HTTP's e\u0301's ÉCOLE'S Ǆ'll"},
	{"numbers are cut in groups of three", "1234567 3.14159 1,000,000 ٣٤٥٦ 二三 ⅷ ½"},
	{"punctuation runs with line breaks and slashes", "!!!\n\n/// ...//\r\n/x ?!/\n/\n"},
	{"white space runs before words and at the end", "a   b\t\t c \n\n  d   "},
	{"carriage returns and new lines mixed", "\r\n\r\n  \r  \n x\n \n\t\ny\r"},
	{"unicode white space", "\u00a0\u2003x\u3000y\u0085z \u2028 \u2029\v\f"},
	{"CJK with punctuation", "监督学习涉及向计算机提供带标签的数据，其中正确答案已经知道。"},
	{"Japanese kana and kanji", "これは日本語の文章です。カタカナもあります！"},
	{"mixed scripts in one word", "Привет世界helloΣίσυφοςשלוםمرحبا"},
	{"camel case and acronyms", "parseHTTPRequest XMLHttpRequest iPhone McDonald's ABCdef"},
	{"title case letters", "ǅemal ǈubljana ǋ"},
	{"combining marks alone and after letters", "e\u0301 \u0301\u0301abc naïve \u0300A\u0301"},
	{"modifier letters", "ʰʲ ˈwɜːd ᵃᵇ ʻokina"},
	{"emoji and symbols", "👍🏽 🇫🇷 ❤️ ∑∫ ©® 😀😀😀 👨‍👩‍👧"},
	{"special-token strings are ordinary text", "<|endoftext|> hi <|endofprompt|><|fim_prefix|>"},
	{"invalid UTF-8 counts as replacement characters", "\xff\xfe abc \xc3 \xe2\x82 ok\x80"},
	{"code with indentation", "func main() {\n\tfmt.Println(\"hi\")\n\n    return\n}\n"},
	{"minified JSON", `{"a":[1,2,{"b":null}],"c":"d\"e","f":-1.5e10,"g":{}}`},
	{"a URL", "https://example.com/path/to?q=1&r=two#frag"},
	{"markdown", "# Title\n\n- **bold** _it_ `code`\n> quote\n\n| a | b |\n|---|---|\n"},
	{"base64", genBase64(7, 300)},
	{"a long run of one letter", strings.Repeat("a", 3000)},
	{"a long run of spaces and then a word", strings.Repeat(" ", 1000) + "word"},
	{"a long run of new lines", strings.Repeat("\n", 700) + "x" + strings.Repeat("\r\n", 300)},
	{"a long run of equals signs", strings.Repeat("=", 2500)},
	{"CJK without punctuation", genCJK(3, 1500)},
	{"control characters", "a\x00b\x01\x1b[31mred\x1b[0m\x7f"},
	{"private use and unassigned code points", "\ue000\U000F0000 \U0010FFFF \u0378x"},
}

func TestCountTokensEqualsTiktoken(t *testing.T) {
	for _, tt := range countCases {
		t.Run(tt.name, func(t *testing.T) {
			checkAgainstReference(t, tt.text)
		})
	}
}

func TestCountTokensOfKnownTexts(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int
	}{
		{"nothing is no tokens", "", 0},
		{"two common words are two tokens", "hello world", 2},
		{"a contraction stays with its word", "don't", 1},
		{"the end-of-text marker is several ordinary tokens", "<|endoftext|>", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CountTokens(tt.text); got != tt.want {
				t.Errorf("CountTokens(%q) = %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}

// fragments are the pieces generated texts are made of: every class the pattern
// tells apart and the places where its alternatives meet.
var fragments = []string{
	"the", " The", "HTTP", "iOS", "don't", "'s", "'LL", "'", "''", " '", "n't", "you're",
	"0", "12", "345", "6789", "3.14", "١٢", "½",
	"!", "?!", "...", "/", "//", "(", ")", "{}", "[", "\"", "--", "=>", "#", "@", "$", "%",
	" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "\r", " \n", "\u00a0", "\u3000", "\u2028",
	"é", "e\u0301", "\u0301", "ǅ", "ʰ", "Σ", "σ", "Я", "я", "中文", "日本", "ー", "한국어",
	"😀", "👍🏽", "❤️", "∑", "\x00", "\x7f", "<|endoftext|>", "\xff", "\xc3",
}

// genMixed returns a text of n fragments chosen with the seed.
func genMixed(seed uint64, n int) string {
	r := newRand(seed)
	var b strings.Builder
	for range n {
		b.WriteString(fragments[r.IntN(len(fragments))])
	}
	return b.String()
}

func TestCountTokensEqualsTiktokenOnGeneratedTexts(t *testing.T) {
	for seed := range uint64(300) {
		checkAgainstReference(t, genMixed(seed, 1+int(seed%60)))
	}
	for seed := range uint64(5) {
		checkAgainstReference(t, genEnglish(seed, 4<<10))
	}
}

// conversationMessage is the part of an OpenAI chat message that holds text.
type conversationMessage struct {
	Content   *string `json:"content"`
	ToolCalls []struct {
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// sharedTexts returns every message content and tool call of the shared
// conversations and the shared system prompts, or skips the test without them.
func sharedTexts(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("no shared data at %s", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "conversations", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conversations in %s: %v", dir, err)
	}
	var texts []string
	for _, name := range files {
		texts = append(texts, conversationTexts(t, name)...)
	}
	prompts, err := filepath.Glob(filepath.Join(dir, "system-prompts", "*"))
	if err != nil || len(prompts) == 0 {
		t.Fatalf("no system prompts in %s: %v", dir, err)
	}
	for _, name := range prompts {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	return texts
}

// conversationTexts returns the message contents and tool calls of one JSONL file.
func conversationTexts(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var conv struct{ Messages []conversationMessage }
		if err := json.Unmarshal(sc.Bytes(), &conv); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range conv.Messages {
			if m.Content != nil {
				texts = append(texts, *m.Content)
			}
			for _, c := range m.ToolCalls {
				texts = append(texts, c.Function.Name, c.Function.Arguments)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return texts
}

func TestCountTokensEqualsTiktokenOnSharedConversations(t *testing.T) {
	texts := sharedTexts(t)
	total := 0
	for _, s := range texts {
		got, want := CountTokens(s), referenceCount(t, s)
		if got != want {
			t.Errorf("%.120q: counted %d tokens, tiktoken %d", s, got, want)
		}
		total += got
	}
	if len(texts) < 1000 || total < 100_000 {
		t.Errorf("only %d texts of %d tokens: the corpus did not load", len(texts), total)
	}
}

func TestClassTableAgreesWithUnicode(t *testing.T) {
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	isAny := func(r rune, tables ...*unicode.RangeTable) bool { return unicode.IsOneOf(tables, r) }
	for r := rune(0); r <= unicode.MaxRune; r++ {
		want := map[runeClass]bool{
			classUpper:   isAny(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M),
			classLower:   isAny(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M),
			classLetter:  unicode.Is(unicode.L, r),
			classNumber:  unicode.Is(unicode.N, r),
			classSpace:   unicode.IsSpace(r),
			classNewline: r == '\r' || r == '\n',
		}
		got := tk.classes.of(r)
		for class, in := range want {
			if (got&class != 0) != in {
				t.Fatalf("rune %U: class %b is %v, unicode says %v", r, class, !in, in)
			}
		}
	}
}

func TestCountTokensIsSafeForConcurrentUse(t *testing.T) {
	texts := []string{genEnglish(1, 20<<10), genCJK(2, 20<<10), genBase64(3, 20<<10),
		strings.Repeat("ab", 40<<10)}
	want := make([]int, len(texts))
	for i, s := range texts {
		want[i] = CountTokens(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(texts))
	for range 8 {
		for i, s := range texts {
			wg.Go(func() {
				if got := CountTokens(s); got != want[i] {
					errs <- "text " + string(rune('0'+i)) + " counted differently"
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
