package transport

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// The chat page: static files embedded in the binary, served at / and /assets/.
// The page is a client of the WebSocket protocol like any other; it holds no
// state on the server besides the sessions it opens.
//
// web/stated.js is a copy of clients/js/stated.js (go:embed cannot reach outside
// the package); TestWebClientLibraryIsTheClientsCopy keeps the two the same.
//
//go:generate cp ../clients/js/stated.js web/stated.js

//go:embed web
var webFiles embed.FS

// webAsset is one embedded file with what its responses need.
type webAsset struct {
	data  []byte
	ctype string
	etag  string
}

// webAssets are the embedded files by name, read once at start.
var webAssets = loadWebAssets()

var webTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

func loadWebAssets() map[string]*webAsset {
	out := make(map[string]*webAsset)
	entries, _ := fs.ReadDir(webFiles, "web") // embedded: cannot fail
	for _, e := range entries {
		ctype, ok := webTypes[path.Ext(e.Name())]
		if e.IsDir() || !ok {
			continue
		}
		data, _ := webFiles.ReadFile("web/" + e.Name())
		sum := sha256.Sum256(data)
		out[e.Name()] = &webAsset{data: data, ctype: ctype,
			etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return out
}

// webPolicy is the page's Content-Security-Policy: its own scripts, styles and
// connections only, so that nothing injected into a conversation can run or
// send anything elsewhere.
const webPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// webRoutes serves the chat page: GET / and GET /assets/{name}.
func (s *Server) webRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveWebAsset(w, r, webAssets["index.html"])
	})
	mux.HandleFunc("GET /assets/{name}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := webAssets[r.PathValue("name")]
		if !ok || r.PathValue("name") == "index.html" {
			http.NotFound(w, r)
			return
		}
		serveWebAsset(w, r, a)
	})
}

// serveWebAsset answers with a, or 304 when the client's copy is current. Every
// response is revalidated (no-cache), so a new binary's page is seen at once.
func serveWebAsset(w http.ResponseWriter, r *http.Request, a *webAsset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The URL names the session: it must not travel in a Referer header.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", webPolicy)
	h.Set("X-Frame-Options", "DENY")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
