package accesslog

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zapcore"
)

// The request and response headers Caddy logs (caddyhttp.LoggableHTTPRequest
// and caddyhttp.LoggableHTTPHeader) are written here field by field, the
// same fields under the same keys, with the secrets redacted as they are
// written. Caddy's own marshalers allocate twice per header (a lower-cased
// name and a boxed slice of values); these allocate nothing: what they hand
// to the wrapped encoder points into one pooled entryScratch.

// entryScratch is what the marshalers of one entry point to while the
// wrapped encoder writes it.
type entryScratch struct {
	fields      [16]zapcore.Field // the entry's fields as handed on: the held request first, secrets wrapped
	request     httpRequest
	reqHeaders  httpHeader
	respHeaders httpHeader
	tls         tlsState
	values      headerValues
}

var scratchPool = sync.Pool{New: func() any { return new(entryScratch) }}

func getScratch(r *Redactor) *entryScratch {
	s := scratchPool.Get().(*entryScratch)
	s.request.s, s.request.r = s, r
	s.reqHeaders.s, s.respHeaders.s = s, s
	s.values.r = r
	return s
}

// putScratch drops the references to the entry's request and headers and
// returns s to the pool.
func putScratch(s *entryScratch) {
	*s = entryScratch{}
	scratchPool.Put(s)
}

// httpRequest writes what caddyhttp.LoggableHTTPRequest writes, its uri
// and headers redacted.
type httpRequest struct {
	req *http.Request
	r   *Redactor
	s   *entryScratch
}

func (o *httpRequest) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	req := o.req
	ip, port, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		ip, port = req.RemoteAddr, ""
	}
	enc.AddString("remote_ip", ip)
	enc.AddString("remote_port", port)
	if clientIP, ok := caddyhttp.GetVar(req.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		enc.AddString("client_ip", clientIP)
	}
	enc.AddString("proto", req.Proto)
	enc.AddString("method", req.Method)
	enc.AddString("host", req.Host)
	enc.AddString("uri", o.r.URI(req.RequestURI))
	o.s.reqHeaders.h, o.s.reqHeaders.response = req.Header, false
	if err := enc.AddObject("headers", &o.s.reqHeaders); err != nil {
		return err
	}
	if req.TransferEncoding != nil {
		o.s.values.v, o.s.values.uris = req.TransferEncoding, false
		if err := enc.AddArray("transfer_encoding", &o.s.values); err != nil {
			return err
		}
	}
	if req.TLS != nil {
		o.s.tls.cs = req.TLS
		return enc.AddObject("tls", &o.s.tls)
	}
	return nil
}

// httpHeader writes request or response headers, each one an array of its
// values under its name, as ruleOf says.
type httpHeader struct {
	h        http.Header
	response bool
	s        *entryScratch
}

func (o *httpHeader) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	values := &o.s.values
	for name, v := range o.h {
		var err error
		switch ruleOf(name, o.response) {
		case logValues:
			values.v, values.uris = v, false
			err = enc.AddArray(name, values)
		case logRedacted:
			err = enc.AddArray(name, redactedValues)
		case logRedactedURIs:
			values.v, values.uris = v, true
			err = enc.AddArray(name, values)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// headerValues writes one header's values; URIs with their secret query
// parameters redacted.
type headerValues struct {
	v    []string
	uris bool
	r    *Redactor
}

func (o *headerValues) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range o.v {
		if o.uris {
			s = o.r.URI(s)
		}
		enc.AppendString(s)
	}
	return nil
}

// tlsState writes what caddyhttp.LoggableTLSConnState writes.
type tlsState struct {
	cs *tls.ConnectionState
}

func (o *tlsState) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return caddyhttp.LoggableTLSConnState(*o.cs).MarshalLogObject(enc)
}

// Interface guards
var (
	_ zapcore.ObjectMarshaler = (*httpRequest)(nil)
	_ zapcore.ObjectMarshaler = (*httpHeader)(nil)
	_ zapcore.ObjectMarshaler = (*tlsState)(nil)
	_ zapcore.ArrayMarshaler  = (*headerValues)(nil)
)
