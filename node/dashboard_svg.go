package node

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
)

// The dashboard's two pictures are drawn on the server as inline SVG: no
// script, nothing fetched, and text a screen reader can read (title and
// desc).

// embargoSVG draws the embargo's history on a time line: each proposal,
// acceptance, revision and termination as a mark, the embargo in force as a
// bar up to its end, and today.
func embargoSVG(c *cases.Case, now time.Time) template.HTML {
	type mark struct {
		at    time.Time
		label string
	}
	var marks []mark
	for _, h := range c.History {
		marks = append(marks, mark{h.At, h.Message})
	}
	var start, end time.Time
	if c.Embargo != nil {
		start, end = c.Embargo.Start, c.Embargo.End
	}
	if len(marks) == 0 && end.IsZero() {
		return template.HTML(`<p class="muted">No embargo has been proposed.</p>`)
	}
	lo, hi := now, now
	for _, m := range marks {
		lo, hi = minTime(lo, m.at), maxTime(hi, m.at)
	}
	for _, p := range c.Proposals {
		hi = maxTime(hi, p.Terms.End)
	}
	if !end.IsZero() {
		lo, hi = minTime(lo, start), maxTime(hi, end)
	}
	span := hi.Sub(lo)
	if span <= 0 {
		span = time.Hour
	}
	const width, left, right = 640.0, 20.0, 20.0
	x := func(t time.Time) float64 { return left + (width-left-right)*float64(t.Sub(lo))/float64(span) }
	var b strings.Builder
	desc := fmt.Sprintf("Embargo %s", c.EM)
	if !end.IsZero() {
		desc += fmt.Sprintf(", ending %s", end.UTC().Format("2006-01-02 15:04 UTC"))
	}
	fmt.Fprintf(&b, `<svg class="embargo" viewBox="0 0 %.0f 70" role="img" aria-labelledby="emb-t emb-d" xmlns="http://www.w3.org/2000/svg">`, width)
	fmt.Fprintf(&b, `<title id="emb-t">Embargo timeline</title><desc id="emb-d">%s</desc>`, template.HTMLEscapeString(desc))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="40" x2="%.1f" y2="40" class="axis"/>`, left, width-right)
	if !end.IsZero() {
		cls := "bar"
		if !c.EM.InForce() {
			cls = "bar ended"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="32" width="%.1f" height="16" class="%s"/>`, x(start), max(2, x(end)-x(start)), cls)
		fmt.Fprintf(&b, `<text x="%.1f" y="64" class="end" text-anchor="end">ends %s</text>`, x(end), end.UTC().Format("2006-01-02"))
	}
	for _, p := range c.Proposals {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="28" x2="%.1f" y2="52" class="proposal"><title>proposed end %s</title></line>`,
			x(p.Terms.End), x(p.Terms.End), p.Terms.End.UTC().Format("2006-01-02"))
	}
	for i, m := range marks {
		y := 20.0
		if i%2 == 1 {
			y = 12
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="40" r="4" class="mark"><title>%s %s</title></circle><text x="%.1f" y="%.0f" text-anchor="middle" class="label">%s</text>`,
			x(m.at), template.HTMLEscapeString(m.label), m.at.UTC().Format("2006-01-02 15:04"), x(m.at), y, template.HTMLEscapeString(m.label))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="24" x2="%.1f" y2="56" class="now"><title>now</title></line>`, x(now), x(now))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// stateSVG draws the case state: the case's p, x, a and each vendor's v,
// f, d, or a deployer's own d, as boxes, lit when the event has happened.
func stateSVG(c *cases.Case) template.HTML {
	type row struct {
		label   string
		letters string // lower case: not yet; upper case: happened
	}
	rows := []row{{"world", c.PXA.String()}}
	more := 0
	for _, p := range c.Participants {
		if p.Removed {
			continue
		}
		if r := roleNames(p.Roles); containsAny(r, "vendor", "deployer") {
			if len(rows) > maxStateRows {
				more++
				continue
			}
			rows = append(rows, row{shortID(p.Actor), cvdstate.FixPath(p.Roles, p.VFD)})
		}
	}
	const box, gap, labelW = 26.0, 6.0, 150.0
	h := float64(len(rows))*(box+gap) + gap
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="cs" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="cs-t cs-d" xmlns="http://www.w3.org/2000/svg">`, labelW+3*(box+gap), h)
	var desc []string
	for _, r := range rows {
		desc = append(desc, r.label+" "+r.letters)
	}
	fmt.Fprintf(&b, `<title id="cs-t">Case state</title><desc id="cs-d">%s</desc>`, template.HTMLEscapeString(strings.Join(desc, "; ")))
	for i, r := range rows {
		y := gap + float64(i)*(box+gap)
		fmt.Fprintf(&b, `<text x="0" y="%.1f" class="who">%s</text>`, y+box*0.7, template.HTMLEscapeString(r.label))
		for j, ch := range r.letters {
			cls := "off"
			if ch >= 'A' && ch <= 'Z' {
				cls = "on"
			}
			bx := labelW + float64(j)*(box+gap)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.0f" height="%.0f" rx="4" class="%s"/><text x="%.1f" y="%.1f" text-anchor="middle" class="letter %s">%c</text>`,
				bx, y, box, box, cls, bx+box/2, y+box*0.68, cls, ch)
		}
	}
	b.WriteString(`</svg>`)
	if more > 0 {
		fmt.Fprintf(&b, `<p class="muted">and %d more vendors and deployers; the participants table lists each one's vfd.</p>`, more)
	}
	return template.HTML(b.String())
}

// maxStateRows bounds the vendors and deployers the case-state picture
// draws: beyond a few dozen a picture stops being easier than the table.
const maxStateRows = 24

func containsAny(have []string, want ...string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
