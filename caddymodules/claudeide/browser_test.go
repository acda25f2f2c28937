package claudeide_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// TestBrowserSignOn drives headless Chromium through the whole flow: the app
// sends it to the sign-in page, it signs in, the frontend's page shows the IDE
// in an iframe through the IDE host's single sign-on; then pages of other
// origins frame the IDE host and the browser refuses to render it.
func TestBrowserSignOn(t *testing.T) {
	chromium := testenv.Chromium(t)
	s := startIDEStack(t)
	session := s.gw.NewSession(t, http.Header{"Cookie": {s.login(t)}})
	ideURL := s.ideOrigin() + "/s/" + session + "/"
	s.frontend.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Claude</title><h1 id="app">Frontend for %s</h1>
<iframe id="ide" src="%s" width="900" height="300"></iframe>`, r.Header.Get("X-Auth-User-Name"), ideURL)
	})
	// The session's IDE is the stand-in (internal/standin) in the session's
	// workspace container: its page names its folder in #folder and shows
	// in #ws the echo of a message sent over a WebSocket beside the page.
	ideServed := func() int {
		n := 0
		for _, l := range strings.Split(s.gw.Log(), "\n") {
			if strings.Contains(l, `"uri":"/s/`+session+`/"`) && strings.Contains(l, `"status":200`) {
				n++
			}
		}
		return n
	}
	// Pages of other origins that try to frame the IDE host: one on the same
	// site as the app (https://localhost on another port: the browser sends it
	// the IDE cookie, so only frame-ancestors can stop it) and one cross-site.
	framer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Other</title><h1 id="other">Another origin</h1><iframe id="ide" src="%s" width="900" height="300"></iframe>`, ideURL)
	})
	sibling := httptest.NewTLSServer(framer)
	t.Cleanup(sibling.Close)
	crossSite := httptest.NewServer(framer)
	t.Cleanup(crossSite.Close)
	siblingURL := "https://localhost:" + strings.TrimPrefix(sibling.URL, "https://127.0.0.1:") + "/"
	crossSiteURL := "http://other.test:" + strings.TrimPrefix(crossSite.URL, "http://127.0.0.1:") + "/"

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 700),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("host-resolver-rules", "MAP * 127.0.0.1"),
		// One renderer for every frame, so the test can read the iframe's DOM.
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("disable-features", "IsolateOrigins,site-per-process,Translate"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	if err := chromedp.Do(ctx); err != nil {
		testenv.Missing(t, "a working Chromium at "+chromium, err)
	}

	// 1. The app sends a browser without a session to the sign-in page.
	if err := chromedp.Do(ctx,
		testenv.Navigate(s.app()+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		t.Fatalf("opening the app: %v", err)
	}
	loginURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loginURL != s.app()+"/auth/login?next=%2F" {
		t.Fatalf("landed on %s, want the sign-in page", loginURL)
	}
	screenshot(t, ctx, "claude-e2e-1-login.png")

	// 2. Sign in; the frontend's page comes back with the IDE in its iframe.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("app")),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("app")))
	if err != nil {
		t.Fatal(err)
	}
	appURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if appURL != s.app()+"/" || heading != "Frontend for admin" {
		t.Fatalf("after sign-in: %s %q", appURL, heading)
	}
	text, err := waitFrameText(ctx, "folder", 60*time.Second)
	if err != nil {
		screenshot(t, ctx, "claude-e2e-2-app-failed.png")
		t.Fatalf("the IDE iframe did not show the IDE: %v", err)
	}
	if text != "/workspace" {
		t.Errorf("IDE iframe shows the folder %q", text)
	}
	// The IDE's WebSocket connects through the gateway from inside the iframe.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if text, _ = waitFrameText(ctx, "ws", time.Second); text == "echo: ping" {
			break
		}
		if time.Now().After(deadline) {
			screenshot(t, ctx, "claude-e2e-2-ws-failed.png")
			t.Fatalf("the IDE's WebSocket in the iframe shows %q, want the echo", text)
		}
	}
	screenshot(t, ctx, "claude-e2e-2-app-with-ide.png")

	// 3. Another origin of the same site frames the IDE host: the request
	// carries the IDE cookie and code-server answers, but frame-ancestors keeps
	// the browser from showing it.
	hits := ideServed()
	if err := chromedp.Do(ctx, testenv.Navigate(siblingURL), chromedp.WaitVisible(chromedp.ID("other"))); err != nil {
		t.Fatalf("opening the other origin's page: %v", err)
	}
	if _, err := waitFrameText(ctx, "folder", 5*time.Second); err == nil {
		t.Fatal("a page of another origin shows the IDE in its iframe")
	}
	if ideServed() == hits {
		t.Error("the framed request never reached code-server: the refusal above proves nothing about frame-ancestors")
	}
	screenshot(t, ctx, "claude-e2e-3-other-origin-refused.png")

	// 4. A cross-site page gets nothing either.
	if err := chromedp.Do(ctx, testenv.Navigate(crossSiteURL), chromedp.WaitVisible(chromedp.ID("other"))); err != nil {
		t.Fatalf("opening the cross-site page: %v", err)
	}
	if _, err := waitFrameText(ctx, "folder", 5*time.Second); err == nil {
		t.Fatal("a cross-site page shows the IDE in its iframe")
	}
}

// waitFrameText waits until an element with id inside an iframe exists and
// returns its text.
func waitFrameText(ctx context.Context, id string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var text string
		res, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{Depth: new(int64(-1)), Pierce: new(true)})
		if err != nil {
			return "", err
		}
		if n := find(res.Root, id, false); n != nil {
			text = nodeText(n)
		}
		if text != "" {
			return text, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no #%s in any iframe after %s", id, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// find looks for the element with id inside a frame's document.
func find(n *cdp.Node, id string, inFrame bool) *cdp.Node {
	if inFrame {
		for i := 0; i+1 < len(n.Attributes); i += 2 {
			if n.Attributes[i] == "id" && n.Attributes[i+1] == id {
				return n
			}
		}
	}
	for _, c := range n.Children {
		if f := find(c, id, inFrame); f != nil {
			return f
		}
	}
	if n.ContentDocument != nil {
		return find(n.ContentDocument, id, true)
	}
	return nil
}

func nodeText(n *cdp.Node) string {
	if n.NodeType == 3 { // a text node
		return n.NodeValue
	}
	var b strings.Builder
	for _, c := range n.Children {
		b.WriteString(nodeText(c))
	}
	return b.String()
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(os.TempDir(), name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", p)
}
