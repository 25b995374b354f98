package node

import (
	"bytes"
	"net/http"

	"github.com/openvultron/vultron/problem"
)

// recorder keeps what the request log, the metrics and the audit read of
// an answer while it passes through: its status, its size, the error an
// answer of problem.Write was written for and, when capture is set, the
// start of a refusal's body, which is the node's own {"error": ...}
// sentence. It passes flushes on, and lets
// http.ResponseController reach the connection (the dashboard's event
// stream extends its write deadline through it).
type recorder struct {
	http.ResponseWriter
	status  int // 0 until the answer starts
	bytes   int
	capture int // how much of a refusal's body to keep
	body    bytes.Buffer
	err     error // the error the answer was written for (problem.Write)
}

// NoteError keeps the error problem.Write answers with.
func (w *recorder) NoteError(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Status is the answer's status: 200 for an answer that set none.
func (w *recorder) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// WriteHeader records the first status sent.
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes sent and keeps the start of a refusal's body.
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 && w.body.Len() < w.capture {
		w.body.Write(b[:min(len(b), w.capture-w.body.Len())])
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Flush passes a flush on to the connection.
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reason returns the error sentence of a refusal's answer.
func (w *recorder) reason() string {
	if msg, ok := problem.ReadBody(w.body.Bytes()); ok {
		return msg
	}
	return http.StatusText(w.Status())
}
