package accesslog

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
