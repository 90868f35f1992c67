package bench

import (
	"math/rand/v2"
	"strings"
)

// words are the vocabulary of generated turns: common English words, so that
// token counts per byte are close to those of real prose.
var words = strings.Fields(`the of and to in is was that for it with as on be at by this
had not are but from or have an they which one you were her all she there would their we
him been has when who will more no if out so said what up its about into than them can only
other new some could time these two may then do first any my now such like our over man me
even most made after also did many before must through back years where much your way well
down should because each just those people how too little state good very make world still
own see men work long get here between both life being under never day same another know
while last might us great old year off come since against go came right used take three
server session answer cache prompt request stream window record order price model tools`)

// turnText returns the text of turn (from 1) of session (from 0): n bytes of
// English-like ASCII prose made of sentences. The same seed, session and turn
// give the same text, so runs are comparable; different turns differ, so the
// server's repeat detection and de-duplication see ordinary conversation.
func turnText(seed uint64, session, turn, n int) string {
	r := rand.New(rand.NewPCG(seed, uint64(session)<<32|uint64(uint32(turn))))
	var b strings.Builder
	b.Grow(n + 16)
	start := true
	for b.Len() < n {
		w := words[r.IntN(len(words))]
		if start {
			b.WriteString(strings.ToUpper(w[:1]))
			b.WriteString(w[1:])
			start = false
		} else {
			b.WriteString(w)
		}
		switch k := r.IntN(12); {
		case k == 0:
			b.WriteString(". ")
			start = true
		case k == 1:
			b.WriteString(", ")
		default:
			b.WriteByte(' ')
		}
	}
	s := b.String()[:n]
	if n > 1 {
		s = s[:n-1] + "."
	}
	return s
}
