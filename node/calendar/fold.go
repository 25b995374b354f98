package calendar

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// foldingWriter folds the content lines written to it at 75 octets, as RFC
// 5545 §3.1 asks: a line longer than that continues on the next line after
// CRLF and a space, never inside a UTF-8 sequence.
type foldingWriter struct {
	w    io.Writer
	line []byte
}

func (f *foldingWriter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		f.line = append(f.line, p[i])
		if n := len(f.line); n >= 2 && f.line[n-2] == '\r' && f.line[n-1] == '\n' {
			if err := f.flush(f.line[:n-2]); err != nil {
				return i, err
			}
			f.line = f.line[:0]
		}
	}
	return len(p), nil
}

func (f *foldingWriter) flush(line []byte) error {
	var out bytes.Buffer
	limit := 75
	for len(line) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		out.Write(line[:cut])
		out.WriteString("\r\n ")
		line = line[cut:]
		limit = 74 // the leading space counts
	}
	out.Write(line)
	out.WriteString("\r\n")
	_, err := f.w.Write(out.Bytes())
	return err
}
