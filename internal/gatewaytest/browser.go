package gatewaytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// Browser is an HTTP client of a gateway that keeps cookies and follows
// redirects, as a browser does: it signs in on the app host and then reaches
// the IDE host through its single sign-on.
type Browser struct {
	// Client sends the requests; its jar holds the gateway's cookies.
	Client *http.Client
	g      *Gateway
}

// NewBrowser returns a Browser without cookies.
func (g *Gateway) NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{g: g, Client: &http.Client{Transport: g.Transport(), Jar: jar, Timeout: 60 * time.Second}}
}

// Login signs in through the API (the app host's cookies land in the jar)
// and returns the access token for Bearer requests.
func (b *Browser) Login(t testing.TB, username, password string) string {
	t.Helper()
	resp, err := b.Client.Post(b.g.URL("localhost", "/api/auth/login"), "application/json",
		strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("login as %s: %d %v", username, resp.StatusCode, err)
	}
	return body.AccessToken
}

// Get sends GET url with the Accept header, following redirects (the IDE
// host's sign-on included), and returns the last answer and its body.
func (b *Browser) Get(t testing.TB, url, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
