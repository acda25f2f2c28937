package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"api error", New(http.StatusConflict, "session_limit_reached", "Too many sessions."), 409, "session_limit_reached"},
		{"wrapped api error", fmt.Errorf("ctx: %w", New(404, "not_found", "No such session.")), 404, "not_found"},
		{"plain error hides detail", errors.New("dial tcp 10.0.0.1: secret detail"), 500, "internal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.err)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
			var env struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if env.Error.Code != tt.wantCode || env.Error.Message == "" {
				t.Fatalf("envelope %+v", env)
			}
			if tt.wantStatus == 500 && strings.Contains(rec.Body.String(), "secret detail") {
				t.Fatalf("internal detail leaked: %s", rec.Body)
			}
		})
	}
}

func TestCodeFor(t *testing.T) {
	for status, want := range map[int]string{502: "bad_gateway", 404: "not_found", 413: "request_entity_too_large", 599: "error"} {
		if got := CodeFor(status); got != want {
			t.Errorf("CodeFor(%d) = %q, want %q", status, got, want)
		}
	}
}
