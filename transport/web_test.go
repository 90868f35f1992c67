package transport

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func webServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	(&Server{}).webRoutes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestWebServesThePageAndItsAssets(t *testing.T) {
	srv := webServer(t)
	cases := []struct {
		name, path string
		status     int
		ctype      string
		contains   string
	}{
		{"the page is served at the root", "/", 200, "text/html; charset=utf-8",
			`<script type="module" src="/assets/app.js">`},
		{"scripts are served as JavaScript", "/assets/app.js", 200,
			"text/javascript; charset=utf-8", "from './stated.js'"},
		{"the client library is served beside the page", "/assets/stated.js", 200,
			"text/javascript; charset=utf-8", "export class StatedError"},
		{"styles are served as CSS", "/assets/app.css", 200, "text/css; charset=utf-8",
			"@media (max-width: 820px)"},
		{"the icon is served as SVG", "/assets/icon.svg", 200, "image/svg+xml", "<svg"},
		{"an unknown asset is not found", "/assets/nope.js", 404, "", ""},
		{"a path outside the assets is not found", "/assets/../go.mod", 404, "", ""},
		{"other paths are not the page", "/chat", 404, "", ""},
		{"the page is not served again as an asset", "/assets/index.html", 404, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body bytes.Buffer
			body.ReadFrom(res.Body)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.status != 200 {
				return
			}
			if got := res.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("content type %q, want %q", got, c.ctype)
			}
			if !strings.Contains(body.String(), c.contains) {
				t.Errorf("body lacks %q", c.contains)
			}
			for _, h := range []string{"Content-Security-Policy", "ETag",
				"X-Content-Type-Options", "Referrer-Policy"} {
				if res.Header.Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
		})
	}
}

func TestWebAnswersNotModifiedToACurrentCopy(t *testing.T) {
	srv := webServer(t)
	res, err := http.Get(srv.URL + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/assets/app.js", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("status %d, want 304", again.StatusCode)
	}
}

func TestWebPolicyAllowsOnlyTheServersOwnScriptsAndConnections(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "script-src 'self'",
		"connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(webPolicy, want) {
			t.Errorf("policy lacks %q", want)
		}
	}
	if strings.Contains(webPolicy, "unsafe") {
		t.Error("policy allows unsafe sources")
	}
}

// The page imports the client library from its own copy; it must be the library
// of clients/js, byte for byte (go generate ./transport refreshes it).
func TestWebClientLibraryIsTheClientsCopy(t *testing.T) {
	want, err := os.ReadFile("../clients/js/stated.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(webAssets["stated.js"].data, want) {
		t.Fatal("transport/web/stated.js differs from clients/js/stated.js: " +
			"run go generate ./transport")
	}
}
