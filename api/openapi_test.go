// Package api_test checks the gateway's HTTP contract, api/openapi.yaml,
// against the real binary: it sends real requests through every route the
// gateway serves itself and validates each answer (status, content type,
// headers, body) against the document.
package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

// contract is api/openapi.yaml, loaded.
type contract struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	// seen records each operation ("POST /api/auth/login") and status answered.
	seen map[string]bool
}

const docURL = "file:///openapi.json"

func loadContract(t *testing.T) *contract {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("api/openapi.yaml is OpenAPI %v, want 3.1.0", doc["openapi"])
	}
	// Through JSON, so that the schema compiler sees JSON values only.
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, root); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(js, &doc)
	return &contract{doc: doc, compiler: c, seen: map[string]bool{}}
}

// get walks the document along keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// pointer is keys as a JSON pointer fragment.
func pointer(keys ...string) string {
	r := strings.NewReplacer("~", "~0", "/", "~1")
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("/" + r.Replace(k))
	}
	return b.String()
}

// route returns the document's path template that path matches. A template's
// last parameter named {path} takes the rest of the path, '/' included.
func (c *contract) route(path string) (string, bool) {
	segs := strings.Split(path, "/")
	for tmpl := range get(c.doc, "paths").(map[string]any) {
		ts := strings.Split(tmpl, "/")
		ok := true
		for i, tseg := range ts {
			if tseg == "{path}" && i == len(ts)-1 {
				ok = len(segs) >= len(ts)
				break
			}
			if i >= len(segs) || (!strings.HasPrefix(tseg, "{") && tseg != segs[i]) || (strings.HasPrefix(tseg, "{") && segs[i] == "") {
				ok = false
				break
			}
			if i == len(ts)-1 && len(segs) != len(ts) {
				ok = false
			}
		}
		if ok {
			return tmpl, true
		}
	}
	return "", false
}

// check validates one answer against the document.
func (c *contract) check(t *testing.T, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	tmpl, ok := c.route(path)
	if !ok {
		t.Errorf("%s %s: no path of the document matches", method, path)
		return
	}
	m := strings.ToLower(method)
	if m == "head" {
		m = "get"
	}
	op := get(c.doc, "paths", tmpl, m)
	if op == nil {
		// A method the path does not document: only 405 may answer it.
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d for a method %s does not document", method, path, resp.StatusCode, tmpl)
		}
		return
	}
	status := fmt.Sprint(resp.StatusCode)
	keys := []string{"paths", tmpl, m, "responses", status}
	r := get(c.doc, keys...)
	if r == nil {
		t.Errorf("%s %s: status %s is not documented for %s %s: %s", method, path, status, m, tmpl, body)
		return
	}
	c.seen[strings.ToUpper(m)+" "+tmpl+" "+status] = true
	if ref, ok := get(r, "$ref").(string); ok {
		keys = strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		r = get(c.doc, keys...)
	}
	for name, h := range asMap(get(r, "headers")) {
		if ref, ok := get(h, "$ref").(string); ok {
			h = get(c.doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
		}
		v := resp.Header.Get(name)
		if v == "" {
			t.Errorf("%s %s %s: header %s missing", method, path, status, name)
			continue
		}
		if want, ok := get(h, "schema", "const").(string); ok && v != want {
			t.Errorf("%s %s %s: header %s = %q, want %q", method, path, status, name, v, want)
		}
	}
	content := asMap(get(r, "content"))
	if len(content) == 0 {
		if len(body) != 0 {
			t.Errorf("%s %s %s: documented without a body, got %q", method, path, status, body)
		}
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if _, ok := content[ct]; !ok {
		t.Errorf("%s %s %s: content type %q, documented: %v", method, path, status, ct, keysOf(content))
		return
	}
	if ct != "application/json" || method == http.MethodHead {
		return
	}
	loc := docURL + "#" + pointer(append(keys, "content", ct, "schema")...)
	schema, err := c.compiler.Compile(loc)
	if err != nil {
		t.Fatalf("compiling %s: %v", loc, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s %s: body is not JSON: %v: %q", method, path, status, err, body)
		return
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("%s %s %s: body %s does not match the document: %v", method, path, status, body, err)
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestDocumentListsEveryCode: the error envelope's code enum is exactly the
// registry of apierror, and every route's codes come from it.
func TestDocumentListsEveryCode(t *testing.T) {
	c := loadContract(t)
	var registered []string
	for _, code := range apierror.Codes() {
		registered = append(registered, code.Name)
	}
	var listed []string
	for _, v := range get(c.doc, "components", "schemas", "Error", "properties", "error", "properties", "code", "enum").([]any) {
		listed = append(listed, v.(string))
	}
	slices.Sort(registered)
	slices.Sort(listed)
	if !slices.Equal(registered, listed) {
		t.Errorf("the envelope's codes in api/openapi.yaml differ from apierror's registry:\n document: %v\n registry: %v", listed, registered)
	}
	// Every enum of codes under a route names registered codes.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if code, ok := get(v, "properties", "error", "properties", "code", "enum").([]any); ok {
				for _, name := range code {
					if _, ok := apierror.Lookup(name.(string)); !ok {
						t.Errorf("%s lists code %q, which apierror does not define", at, name)
					}
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for _, x := range v {
				walk(x, at)
			}
		}
	}
	walk(c.doc["paths"], "paths")
	walk(get(c.doc, "components", "responses"), "components/responses")
}

// TestContract sends real requests through the real binary, on Caddyfile.dev
// with a real executor, and validates every answer against api/openapi.yaml.
func TestContract(t *testing.T) {
	c := loadContract(t)
	image := os.Getenv("CLAUDE_SANDBOX_IMAGE")
	if image == "" {
		image = "claude-sandbox:local"
	}
	wsImage := os.Getenv("CLAUDE_WORKSPACE_IMAGE")
	if wsImage == "" {
		wsImage = workspaces.LocalImage
	}
	testenv.DockerImage(t, image)
	testenv.DockerImage(t, wsImage)
	b, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	i := strings.Index(cfg, "\t\texecutor {\n")
	j := strings.Index(cfg[i:], "\n\t\t}\n")
	if i < 0 || j < 0 {
		t.Fatal("Caddyfile.dev lacks the executor block")
	}
	instance := "apitest-" + testenv.RandomHex(6)
	// Runs go to the session's workspace container: the local image, never
	// pulled, under names of this test's own.
	cfg = cfg[:i] + "\t\texecutor {\n\t\t\timage default " + image + "\n\t\t\tinstance " + instance + "\n\t\t}\n" +
		"\t\tworkspaces {\n\t\t\timage " + wsImage + "\n\t\t\tpull never\n\t\t\tcontainer_prefix claude-ws-" + instance + "-\n\t\t}\n" +
		cfg[i+j+len("\n\t\t}\n"):]
	const password = "contract-test-password"
	g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: cfg, Env: map[string]string{
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_DATABASE":       testenv.SQLiteDatabase(t),
		"CLAUDE_ADMIN_PASSWORD": password,
		"RATE_LIMIT_PER_MINUTE": "100000",
		"RATE_LIMIT_LOGIN":      "1000/min",
		"MAX_FILE_SIZE":         "1024",
	}})
	client := g.Client()
	client.Timeout = 2 * time.Minute
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// User ids of this test's own: the workspaces' caps per user are counted
	// on the engine, which other tests share.
	user := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-"+instance, "alice", "user", time.Hour)
	admin := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-admin-"+instance, "root", "admin", time.Hour)

	type request struct {
		method, path string
		token        string
		header       map[string]string
		body         string
		want         int
	}
	do := func(rq request) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(rq.method, g.URL("localhost", rq.path), strings.NewReader(rq.body))
		if err != nil {
			t.Fatal(err)
		}
		if rq.token != "" {
			req.Header.Set("Authorization", "Bearer "+rq.token)
		}
		for k, v := range rq.header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", rq.method, rq.path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != rq.want {
			t.Errorf("%s %s: %d %s, want %d", rq.method, rq.path, resp.StatusCode, body, rq.want)
		}
		c.check(t, rq.method, strings.SplitN(rq.path, "?", 2)[0], resp, body)
		return resp, body
	}
	jsonHdr := map[string]string{"Content-Type": "application/json"}

	// Probes.
	do(request{method: "GET", path: "/api/live", want: 200})
	do(request{method: "GET", path: "/api/ready", want: 200})
	do(request{method: "GET", path: "/api/health", want: 200})
	do(request{method: "POST", path: "/api/live", want: 405})

	// Sign-in.
	resp, _ := do(request{method: "POST", path: "/api/auth/login", header: jsonHdr, body: `{"username":"admin","password":"` + password + `"}`, want: 200})
	var refresh string
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-claude_refresh" {
			refresh = ck.Name + "=" + ck.Value
		}
	}
	if refresh == "" {
		t.Fatal("login set no refresh cookie")
	}
	do(request{method: "POST", path: "/api/auth/login", header: jsonHdr, body: `{"username":"admin","password":"wrong"}`, want: 401})
	do(request{method: "POST", path: "/api/auth/login", header: jsonHdr, body: `{"username":`, want: 400})
	do(request{method: "POST", path: "/api/auth/login", header: map[string]string{"Content-Type": "text/plain"}, body: "x", want: 415})
	do(request{method: "GET", path: "/api/auth/login", want: 405})
	do(request{method: "POST", path: "/api/auth/refresh", want: 401})
	// A cookie-authenticated POST must come from the app's own origin.
	do(request{method: "POST", path: "/api/auth/refresh", header: map[string]string{"Cookie": refresh}, want: 403})
	sameOrigin := map[string]string{"Cookie": refresh, "Origin": strings.TrimSuffix(g.URL("localhost", "/"), "/")}
	do(request{method: "POST", path: "/api/auth/refresh", header: sameOrigin, want: 200})
	do(request{method: "POST", path: "/api/auth/refresh", header: sameOrigin, want: 401}) // re-used
	do(request{method: "GET", path: "/api/auth/me", token: user, want: 200})
	do(request{method: "GET", path: "/api/auth/me", want: 401})
	do(request{method: "GET", path: "/api/auth/me", token: "not-a-token", want: 401})

	// Sessions.
	_, body := do(request{method: "POST", path: "/api/sessions", token: user, want: 201})
	var sess struct{ ID string }
	if err := json.Unmarshal(body, &sess); err != nil || sess.ID == "" {
		t.Fatalf("created session: %q %v", body, err)
	}
	s := "/api/sessions/" + sess.ID
	do(request{method: "GET", path: "/api/sessions", token: user, want: 200})
	do(request{method: "GET", path: "/api/sessions?all=1", token: user, want: 403})
	do(request{method: "GET", path: "/api/sessions?all=1", token: admin, want: 200})
	do(request{method: "GET", path: "/api/sessions", want: 401})
	do(request{method: "PUT", path: "/api/sessions", token: user, want: 405})
	do(request{method: "GET", path: s, token: user, want: 200})
	do(request{method: "GET", path: s, token: admin, want: 404}) // someone else's
	do(request{method: "GET", path: "/api/sessions/session-00000000000000000000000000000000", token: user, want: 404})
	do(request{method: "PATCH", path: s, token: user, want: 405})

	// Files.
	do(request{method: "PUT", path: s + "/files/dir/hello.py", token: user, body: "print('hello')\n", want: 201})
	do(request{method: "PUT", path: s + "/files/dir/hello.py", token: user, body: "print('hello')\n", want: 200})
	do(request{method: "PUT", path: s + "/files/empty/", token: user, want: 201})
	do(request{method: "PUT", path: s + "/files/big", token: user, body: strings.Repeat("x", 2048), want: 413})
	do(request{method: "GET", path: s + "/files/dir/hello.py", token: user, want: 200})
	do(request{method: "GET", path: s + "/files/", token: user, want: 200})
	do(request{method: "GET", path: s + "/files/dir/", token: user, want: 200})
	do(request{method: "GET", path: s + "/files/missing", token: user, want: 404})
	do(request{method: "GET", path: s + "/files/dir", token: user, want: 400}) // a directory without '/'
	do(request{method: "GET", path: s + "/files/dir/%2e%2e/x", token: user, want: 400})
	do(request{method: "POST", path: s + "/files/dir/hello.py", token: user, want: 405})
	do(request{method: "DELETE", path: s + "/files/empty/", token: user, want: 204})

	// History.
	do(request{method: "POST", path: s + "/history", token: user, header: jsonHdr, body: `{"role":"user","text":"hi"}`, want: 201})
	do(request{method: "POST", path: s + "/history", token: user, header: jsonHdr, body: `{"role":`, want: 400})
	do(request{method: "GET", path: s + "/history", token: user, want: 200})
	do(request{method: "DELETE", path: s + "/history", token: user, want: 405})

	// Runs.
	do(request{method: "POST", path: s + "/exec", token: user, header: jsonHdr, body: `{"language":"python","code":"print(6*7)"}`, want: 200})
	resp, body = do(request{method: "POST", path: s + "/exec", token: user, header: map[string]string{"Content-Type": "application/json", "Accept": "text/event-stream"},
		body: `{"language":"bash","code":"echo hi"}`, want: 200})
	if !strings.Contains(string(body), "event: exit") {
		t.Errorf("the event stream has no exit event: %q", body)
	}
	do(request{method: "POST", path: s + "/exec", token: user, header: jsonHdr, body: `{"language":"cobol","code":"x"}`, want: 400})
	do(request{method: "POST", path: s + "/exec", token: user, header: jsonHdr, body: `{"language":"python","code":""}`, want: 400})
	do(request{method: "POST", path: s + "/exec", token: user, header: jsonHdr, body: `{"language":"python","code":"1","timeout_seconds":-1}`, want: 400})
	do(request{method: "POST", path: s + "/exec", token: user, header: jsonHdr, body: `not json`, want: 400})
	do(request{method: "POST", path: s + "/exec", token: admin, header: jsonHdr, body: `{"language":"python","code":"1"}`, want: 404})
	do(request{method: "POST", path: s + "/exec", header: jsonHdr, body: `{"language":"python","code":"1"}`, want: 401})
	do(request{method: "GET", path: s + "/exec", token: user, want: 405})

	// The executor.
	do(request{method: "GET", path: "/api/executor", token: user, want: 200})
	do(request{method: "POST", path: "/api/executor", token: user, want: 405})
	do(request{method: "POST", path: "/api/executor/cleanup", token: user, want: 403})
	do(request{method: "POST", path: "/api/executor/cleanup", token: admin, want: 200})
	do(request{method: "POST", path: "/api/executor/images?tag=Not%20A%20Tag", token: admin, body: "", want: 400})
	do(request{method: "POST", path: "/api/executor/images?tag=x:1", token: user, want: 403})

	// The end of a session and of a sign-in.
	do(request{method: "DELETE", path: s + "/files/dir/hello.py", token: user, want: 204})
	do(request{method: "DELETE", path: s, token: user, want: 204})
	do(request{method: "DELETE", path: s, token: user, want: 404})
	do(request{method: "POST", path: "/api/auth/logout", token: user, want: 204})

	// Every documented operation was answered at least once.
	for tmpl, item := range asMap(get(c.doc, "paths")) {
		for m := range asMap(item) {
			if m == "parameters" {
				continue
			}
			op := strings.ToUpper(m) + " " + tmpl
			found := false
			for k := range c.seen {
				if strings.HasPrefix(k, op+" ") {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: documented, never exercised", op)
			}
		}
	}
}
