package claudeconsole_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// TestBrowserConsole drives Chromium: sign in through the form, create a
// user, lift a ban, and save a screenshot of every page at 1280 px and at a
// phone's width (PNG) into $CLAUDE_CONSOLE_SCREENSHOTS (else a temp dir) for review.
func TestBrowserConsole(t *testing.T) {
	chromium := testenv.Chromium(t)
	s := start(t)
	shots := os.Getenv("CLAUDE_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// A ban to lift: failures from the address.
	m := s.browser(t)
	for range 5 {
		m.signIn("mallory", "wrong password")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("host-resolver-rules", "MAP * 127.0.0.1"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	defer cancelT()
	if err := chromedp.Do(ctx); err != nil {
		testenv.Missing(t, "a working Chromium at "+chromium, err)
	}
	app := s.origin()
	// The address is banned too (the browser signs in from it): forget its
	// failures so the browser may sign in; the username's ban stays to be lifted.
	if _, err := s.db.Exec("DELETE FROM login_failures WHERE reg_key = 'addr:127.0.0.1'"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		testenv.Navigate(app+"/auth/login?next=/admin/users"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.CSS(`#username`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#password`), adminPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("add-user")),
		chromedp.SendKeys(chromedp.CSS(`#add-user input[name=username]`), "erin"),
		chromedp.SendKeys(chromedp.CSS(`#add-user input[name=password]`), "erin password 1"),
		chromedp.Submit(chromedp.CSS(`#add-user input[name=username]`)),
		chromedp.WaitVisible(chromedp.ID("notice")),
	); err != nil {
		t.Fatalf("sign-in and user creation: %v", err)
	}
	notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("notice")))
	if err != nil {
		t.Fatal(err)
	}
	if notice != "User created." || !s.userExists(t, "erin") {
		t.Fatalf("notice %q", notice)
	}
	s.expectEvent(t, audit.UserCreated, "admin", "erin")
	if err := chromedp.Do(ctx,
		testenv.Navigate(app+"/admin/limits"),
		chromedp.WaitVisible(chromedp.CSS(`#bans button`)),
		chromedp.Click(chromedp.CSS(`#bans button`)),
		chromedp.WaitVisible(chromedp.ID("notice")),
	); err != nil {
		t.Fatalf("ban lift: %v", err)
	}
	s.expectEvent(t, audit.BanLifted, "admin", "user:mallory")
	for _, width := range []int64{1280, 390} {
		for _, page := range []string{"users", "sessions", "executor", "health", "limits", "audit"} {
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(width, 900),
				testenv.Navigate(app+"/admin/"+page),
				chromedp.WaitVisible(chromedp.CSS(`main h1`)),
			); err != nil {
				t.Fatalf("%s at %d: %v", page, width, err)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("%s at %d: %v", page, width, err)
			}
			name := filepath.Join(shots, fmt.Sprintf("%s-%d.png", page, width))
			if err := os.WriteFile(name, png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("screenshots in %s", shots)
}
