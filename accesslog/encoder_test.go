package accesslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// countingRequest is Caddy's loggable request that counts how often it is
// marshaled.
type countingRequest struct {
	caddyhttp.LoggableHTTPRequest
	calls *int
}

func (c countingRequest) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	*c.calls++
	return c.LoggableHTTPRequest.MarshalLogObject(enc)
}

func jsonConfig() zapcore.EncoderConfig {
	cfg := zap.NewProductionEncoderConfig()
	cfg.TimeKey = "" // entries compare equal whatever the clock says
	return cfg
}

// newCore is a core writing what enc encodes to buf, at level.
func newCore(enc zapcore.Encoder, buf *bytes.Buffer, level zapcore.Level) zapcore.Core {
	return zapcore.NewCore(enc, zapcore.AddSync(buf), level)
}

// TestEncoderHoldsRequestUntilWritten logs the way Caddy does: a request
// given with With to a logger that reaches two logs, one of which does not
// write the entry. The request is marshaled once, by the log that writes,
// and the entry is what the plain JSON encoder writes for a request without
// secrets.
func TestEncoderHoldsRequestUntilWritten(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/api/things?page=2", nil)
	r.Header.Set("Accept", "application/json") // one header: a map's order is random
	calls := 0
	req := countingRequest{LoggableHTTPRequest: caddyhttp.LoggableHTTPRequest{Request: r}, calls: &calls}

	var written, skipped, plain bytes.Buffer
	redactor := NewRedactor(DefaultQueryNames)
	logger := zap.New(zapcore.NewTee(
		newCore(NewEncoder(zapcore.NewJSONEncoder(jsonConfig()), redactor), &written, zapcore.InfoLevel),
		newCore(NewEncoder(zapcore.NewJSONEncoder(jsonConfig()), redactor), &skipped, zapcore.ErrorLevel),
	)).With(zap.Object("request", req))
	logger.Info("handled request", zap.Int("status", 200), zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: http.Header{"Content-Type": {"text/plain"}}}))
	if calls != 1 {
		t.Errorf("request marshaled %d times, want once (by the log that writes)", calls)
	}
	if skipped.Len() != 0 {
		t.Errorf("the error-level log wrote %q", skipped.String())
	}

	zap.New(newCore(zapcore.NewJSONEncoder(jsonConfig()), &plain, zapcore.InfoLevel)).
		With(zap.Object("request", req.LoggableHTTPRequest)).
		Info("handled request", zap.Int("status", 200), zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: http.Header{"Content-Type": {"text/plain"}}}))
	if written.String() != plain.String() {
		t.Errorf("entry differs from the JSON encoder's:\n got %s\nwant %s", written.String(), plain.String())
	}
}

// TestEncoderRedactsHeldRequest gives the request with With, as Caddy's
// access log does, and checks the held request is redacted like one given
// with the entry.
func TestEncoderRedactsHeldRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/ws?access_token=sekrit-query&x=1", nil)
	r.Header.Set("Authorization", "Bearer sekrit-header")
	r.Header.Set("Cookie", "__Host-claude_access=sekrit-cookie")
	r.Header.Set("Referer", "https://app.example.com/?token=sekrit-referer")
	r.Header["proxy-authorization"] = []string{"Basic sekrit-proxy"} // set by a handler, not canonical
	// What Caddy logs when log_credentials is on: the encoder redacts anyway.
	req := caddyhttp.LoggableHTTPRequest{Request: r, ShouldLogCredentials: true}
	resp := caddyhttp.LoggableHTTPHeader{Header: http.Header{
		"Set-Cookie": {"__Host-claude_access=sekrit-set-cookie"},
		"Location":   {"https://ide.example.com/auth/ide/callback?ticket=sekrit-ticket"},
	}, ShouldLogCredentials: true}

	for _, tc := range []struct {
		name string
		log  func(*zap.Logger)
	}{
		{"with", func(l *zap.Logger) {
			l.With(zap.Object("request", req)).Info("handled request", zap.Object("resp_headers", resp))
		}},
		{"with lazily", func(l *zap.Logger) {
			l.WithLazy(zap.Object("request", req)).Info("handled request", zap.Object("resp_headers", resp))
		}},
		{"entry", func(l *zap.Logger) {
			l.Info("handled request", zap.Object("request", req), zap.Object("resp_headers", resp))
		}},
		{"another marshaler", func(l *zap.Logger) {
			calls := 0
			l.With(zap.Object("request", countingRequest{LoggableHTTPRequest: req, calls: &calls})).Info("handled request", zap.Object("resp_headers", resp))
		}},
		{"with, twice", func(l *zap.Logger) {
			l.With(zap.Object("request", req)).With(zap.String("upstream", "u")).Info("handled request", zap.Object("resp_headers", resp))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(zap.New(newCore(NewEncoder(zapcore.NewJSONEncoder(jsonConfig()), NewRedactor(DefaultQueryNames)), &buf, zapcore.InfoLevel)))
			out := buf.String()
			if strings.Contains(out, "sekrit") {
				t.Fatalf("a secret reached the log: %s", out)
			}
			var entry struct {
				Request struct {
					URI     string              `json:"uri"`
					Headers map[string][]string `json:"headers"`
				} `json:"request"`
				RespHeaders map[string][]string `json:"resp_headers"`
			}
			if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
				t.Fatalf("entry is not JSON: %v: %s", err, out)
			}
			if entry.Request.URI != "/ws?access_token=REDACTED&x=1" {
				t.Errorf("uri = %q", entry.Request.URI)
			}
			for _, h := range []string{"Authorization", "Cookie"} {
				if v := entry.Request.Headers[h]; len(v) != 1 || v[0] != Redacted {
					t.Errorf("request header %s = %q", h, v)
				}
			}
			if _, ok := entry.Request.Headers["Referer"]; ok {
				t.Errorf("Referer logged")
			}
			if v := entry.RespHeaders["Location"]; len(v) != 1 || v[0] != "https://ide.example.com/auth/ide/callback?ticket=REDACTED" {
				t.Errorf("Location = %q", v)
			}
		})
	}
}

// loggedRequest is a signed-in API request over TLS as Caddy logs it, with
// the headers a browser sends.
func loggedRequest() (caddyhttp.LoggableHTTPRequest, caddyhttp.LoggableHTTPHeader) {
	r := httptest.NewRequest(http.MethodPost, "/api/sessions?x=1", nil)
	r.Host = "app.example.com"
	r.TransferEncoding = []string{"chunked"}
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, NegotiatedProtocol: "h2", ServerName: "app.example.com"}
	for k, v := range map[string]string{
		"Accept": "application/json", "Accept-Encoding": "gzip, br", "Accept-Language": "en",
		"User-Agent": "Mozilla/5.0", "Origin": "https://app.example.com", "Sec-Fetch-Site": "same-origin",
		"Content-Type": "application/json", "X-Requested-With": "fetch",
	} {
		r.Header.Set(k, v)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "198.51.100.7"}))
	resp := http.Header{}
	for k, v := range map[string]string{
		"Content-Type": "application/json", "Content-Length": "30", "Date": "x", "Vary": "Origin",
		"Strict-Transport-Security": "max-age=1", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Referrer-Policy": "strict-origin-when-cross-origin",
	} {
		resp.Set(k, v)
	}
	return caddyhttp.LoggableHTTPRequest{Request: r}, caddyhttp.LoggableHTTPHeader{Header: resp}
}

// TestEncoderWritesWhatCaddyWrites compares, for a request without secrets
// (TLS, client IP, transfer encoding and many headers), the entry the
// encoder writes with the one Caddy's marshalers write through zap's JSON
// encoder: same fields, same values.
func TestEncoderWritesWhatCaddyWrites(t *testing.T) {
	req, resp := loggedRequest()
	var ours, caddys bytes.Buffer
	zap.New(newCore(NewEncoder(zapcore.NewJSONEncoder(jsonConfig()), NewRedactor(DefaultQueryNames)), &ours, zapcore.InfoLevel)).
		Info("handled request", zap.Object("request", req), zap.Object("resp_headers", resp))
	zap.New(newCore(zapcore.NewJSONEncoder(jsonConfig()), &caddys, zapcore.InfoLevel)).
		Info("handled request", zap.Object("request", req), zap.Object("resp_headers", resp))
	var got, want map[string]any
	if err := json.Unmarshal(ours.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, ours.String())
	}
	if err := json.Unmarshal(caddys.Bytes(), &want); err != nil {
		t.Fatalf("%v: %s", err, caddys.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries differ:\n got %s\nwant %s", ours.String(), caddys.String())
	}
	if tlsFields, _ := got["request"].(map[string]any)["tls"].(map[string]any); tlsFields["server_name"] != "app.example.com" {
		t.Errorf("tls not written: %s", ours.String())
	}
}

// TestEncoderAllocations counts the allocations of one access log entry as
// Caddy writes it (the request held from With, the response headers among
// the entry's fields): Caddy's marshalers through zap's JSON encoder make
// two per header; the encoder, none of its own (what remains is the
// wrapped encoder's per-entry work).
func TestEncoderAllocations(t *testing.T) {
	req, resp := loggedRequest()
	cfg := jsonConfig()
	enc := NewEncoder(zapcore.NewJSONEncoder(cfg), NewRedactor(DefaultQueryNames)).Clone()
	enc.AddObject("request", req)
	fields := []zapcore.Field{zap.Int("status", 200), zap.Object("resp_headers", resp)}
	ent := zapcore.Entry{Level: zapcore.InfoLevel, Message: "handled request"}
	encode := func(e zapcore.Encoder) func() {
		return func() {
			buf, err := e.EncodeEntry(ent, fields)
			if err != nil {
				t.Fatal(err)
			}
			buf.Free()
		}
	}
	plain := zapcore.NewJSONEncoder(cfg)
	plain.AddObject("request", req)
	caddys := testing.AllocsPerRun(100, encode(plain))
	ours := testing.AllocsPerRun(100, encode(enc))
	t.Logf("allocations per entry: claudelog %.0f, zap's JSON encoder with Caddy's marshalers %.0f (the request encoded at With)", ours, caddys)
	if ours > 0 {
		t.Errorf("claudelog allocates %.0f times per entry, want 0", ours)
	}
}
