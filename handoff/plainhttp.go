package handoff

import (
	"crypto/tls"
	"errors"
	"io"
)

// plainHTTPAnswer is what an HTTPS port says to a client speaking plain HTTP,
// the same words net/http uses when it runs the handshake itself.
const plainHTTPAnswer = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// answerPlainHTTP tells a client that sent plain HTTP to a TLS port so, when
// err is the handshake failure such a request causes.
func answerPlainHTTP(err error) {
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) || rhe.Conn == nil || !looksLikeHTTP(rhe.RecordHeader) {
		return
	}
	_, _ = io.WriteString(rhe.Conn, plainHTTPAnswer)
}

// looksLikeHTTP reports whether the first five bytes of a connection are the
// start of an HTTP/1.x request line.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}
