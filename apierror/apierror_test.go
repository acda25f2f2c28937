package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCodes lists every code the gateway can answer with: its status and its
// one message. A code added to, changed in or removed from the registry
// without this table (and api/openapi.yaml) fails here.
func TestCodes(t *testing.T) {
	want := []struct {
		status        int
		code, message string
	}{
		{400, "bad_request", "The request could not be read."},
		{400, "code_too_large", "The code is larger than %d bytes."},
		{400, "invalid_code", "The code must not be empty or hold a NUL byte."},
		{400, "invalid_history_entry", "A history entry must be one JSON value."},
		{400, "invalid_language", `The language must be "python" or "bash".`},
		{400, "invalid_path", "The path is not allowed: it must not hold '.' or '..' segments, '//', ';', '\\', encoded '/' or '.', control characters, double-encoded escapes or links that lead outside the session's files."},
		{400, "invalid_request", "The request body is not what this endpoint accepts; api/openapi.yaml describes it."},
		{400, "invalid_tag", "The tag is not a valid image name[:tag]."},
		{400, "invalid_timeout", "timeout_seconds must be a positive number of seconds, at most %d."},
		{400, "is_a_directory", "The path names a directory; end it with '/' to list, create or delete a directory."},
		{400, "not_a_directory", "The path does not name a directory."},
		{400, "stdin_too_large", "stdin is larger than %d bytes."},
		{401, "invalid_credentials", "Wrong username or password."},
		{401, "invalid_refresh_token", "The refresh token is missing, not valid or already used; log in again."},
		{401, "invalid_token", "A valid access token is required; log in at /api/auth/login."},
		{403, "cross_site_request", "This request did not come from an allowed origin; reload the app and try again."},
		{403, "forbidden", "Only administrators may do this."},
		{403, "ide_signon_refused", "This sign-in link was not started in this browser, so it was refused: a link like it could sign you in to someone else's account. Open the IDE again from the app. If this keeps happening, allow cookies for the IDE's site."},
		{403, "ide_ticket_invalid", "This sign-in link is no longer valid: it was already used or is too old. Open the IDE again from the app."},
		{403, "origin_not_allowed", "This origin may not call the gateway from a browser."},
		{403, "websocket_origin_not_allowed", "WebSocket connections are accepted only from the app's own origins."},
		{404, "file_not_found", "No such file or directory."},
		{404, "not_found", "There is nothing at this address."},
		{404, "session_not_found", "No such session."},
		{405, "method_not_allowed", "This address does not answer this method; the Allow header lists those it does."},
		{408, "upload_timeout", "The upload did not arrive within %s; nothing was written. Try again on a faster connection."},
		{409, "session_limit_reached", "The session limit is reached; delete a session first."},
		{413, "build_context_too_large", "The build context is larger than %d bytes."},
		{413, "file_too_large", "The body is larger than the limit of %d bytes."},
		{413, "history_too_large", "The session's history would exceed its limit of %d bytes."},
		{413, "request_too_large", "The request body is larger than %d bytes."},
		{415, "unsupported_media_type", "Send the body as application/json."},
		{422, "build_failed", "The image build failed: %s"},
		{429, "executor_busy", "Too many runs are in progress or waiting; try again later."},
		{429, "ide_cookie_refused", "Your browser keeps refusing the IDE's sign-in cookie. Allow cookies for the IDE's site (or open the IDE in its own tab) and try again in a minute."},
		{429, "rate_limited", "Too many requests. Try again after the seconds in the Retry-After header."},
		{429, "too_many_failed_logins", "Too many failed logins for this user or from this address; retry later."},
		{429, "too_many_workspaces", "You have %d workspaces running, as many as one user may; delete a session or try again later."},
		{500, "internal_error", "The gateway failed to handle the request; the error has been logged."},
		{502, "upstream_unavailable", "The service behind the gateway is not reachable right now. Try again in a moment."},
		{503, "executor_unavailable", "Code execution is unavailable right now; the cause has been logged."},
		{503, "rate_limit_unavailable", "The service is temporarily unavailable. Try again in a moment."},
		{503, "service_unavailable", "The service is temporarily unavailable. Try again in a moment."},
		{503, "workspace_limit", "Every workspace the gateway may run is in use; try again later."},
		{503, "workspace_unavailable", "The workspace could not be started; the cause has been logged. Try again shortly."},
		{504, "build_timeout", "The image build took too long and was stopped."},
		{504, "upstream_timeout", "The service behind the gateway did not answer in time. Try again in a moment."},
		{507, "quota_exceeded", "The session's storage quota of %d bytes (files and history) would be exceeded, or is: remove files first."},
	}
	got := Codes()
	if len(got) != len(want) {
		t.Errorf("%d codes registered, the table lists %d", len(got), len(want))
	}
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			t.Errorf("missing from the registry: %v", want[i])
		case i >= len(want):
			t.Errorf("not in the table: %d %s %q", got[i].Status, got[i].Name, got[i].Message)
		case got[i].Status != want[i].status || got[i].Name != want[i].code || got[i].Message != want[i].message:
			t.Errorf("code %d: registered %d %s %q, table %v", i, got[i].Status, got[i].Name, got[i].Message, want[i])
		}
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{"api error", SessionLimitReached.Err(), 409, "session_limit_reached", SessionLimitReached.Message},
		{"formatted message", FileTooLarge.Err(1024), 413, "file_too_large", "The body is larger than the limit of 1024 bytes."},
		{"wrapped api error", fmt.Errorf("ctx: %w", SessionNotFound.Wrap(errors.New("no row"))), 404, "session_not_found", "No such session."},
		{"plain error hides detail", errors.New("dial tcp 10.0.0.1: secret detail"), 500, "internal_error", Internal.Message},
		{"an Error not made by a code is internal", &Error{Err: errors.New("secret detail")}, 500, "internal_error", Internal.Message},
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
			if env.Error.Code != tt.wantCode || env.Error.Message != tt.wantMessage {
				t.Fatalf("envelope %+v, want %s %q", env, tt.wantCode, tt.wantMessage)
			}
			if strings.Contains(rec.Body.String(), "secret detail") {
				t.Fatalf("internal detail leaked: %s", rec.Body)
			}
		})
	}
}

func TestForStatus(t *testing.T) {
	for status, want := range map[int]string{502: "upstream_unavailable", 404: "not_found", 413: "request_entity_too_large", 500: "internal_error", 599: "error"} {
		if got := ForStatus(status); got.Name != want || got.Status != status || got.Message == "" {
			t.Errorf("ForStatus(%d) = %+v, want %q", status, got, want)
		}
	}
}

func TestIsAPIPath(t *testing.T) {
	for path, want := range map[string]bool{
		"/api": true, "/api/": true, "/api/sessions": true, "/ws/sessions/x": true,
		"/apix": false, "/": false, "/auth/login": false, "/API/health": false, "/wsx": false,
	} {
		if got := IsAPIPath(path); got != want {
			t.Errorf("IsAPIPath(%q) = %v, want %v", path, got, want)
		}
	}
}
