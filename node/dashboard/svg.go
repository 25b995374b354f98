package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
)

// The dashboard's two pictures are drawn on the server as inline SVG: no
// script, nothing fetched, and text a screen reader can read (title and
// desc).

// The embargo picture's geometry: a 640 × 84 view box, the time axis at
// y 50, the labels of the steps above it in up to three lanes, the end
// below.
const (
	svgWidth, svgLeft, svgRight = 640.0, 20.0, 20.0
	svgAxis                     = 50.0
	svgFontSize                 = 11.0
	// svgCharWidth is a generous width of one character of the labels at
	// svgFontSize, so that lanes are assigned with room to spare.
	svgCharWidth = 7.0
	svgLabelGap  = 6.0
	// svgSamePlace is how close, in the picture's units, steps are drawn
	// as one: their labels are joined.
	svgSamePlace = 4.0
	// svgMaxJoined bounds the steps one label names.
	svgMaxJoined = 4
)

// svgLanes are the base lines of the label lanes, nearest the axis first;
// they are further apart than a line of text is high.
var svgLanes = [...]float64{38, 24, 10}

// labelWidth is the width a label is given when lanes are assigned.
func labelWidth(s string) float64 { return svgCharWidth*float64(len([]rune(s))) + 4 }

// embargoSVG draws the embargo's history on a time line: each proposal,
// acceptance, revision and termination as a mark, the embargo as a bar from
// its start to its end (to the step that ended it, for one that ended
// early, with the rest of its planned time outlined), and today. Steps too
// close to tell apart share one label; labels that would still cover each
// other go to the lanes above, and one that finds no free lane is left out
// (its mark keeps the step in its tooltip).
func embargoSVG(c *cases.Case, now time.Time) template.HTML {
	type mark struct {
		at    time.Time
		label string
	}
	var marks []mark
	var endedAt time.Time // when an embargo that is no longer in force ended
	for _, h := range c.History {
		marks = append(marks, mark{h.At, h.Message})
		if h.To == cvdstate.EMExited {
			endedAt = h.At
		}
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
	x := func(t time.Time) float64 {
		return svgLeft + (svgWidth-svgLeft-svgRight)*float64(t.Sub(lo))/float64(span)
	}
	var b strings.Builder
	desc := fmt.Sprintf("Embargo %s", c.EM)
	switch {
	case !end.IsZero() && c.EM.InForce():
		desc += fmt.Sprintf(", ending %s", end.UTC().Format("2006-01-02 15:04 UTC"))
	case !end.IsZero() && !endedAt.IsZero():
		desc += fmt.Sprintf(", ended %s; it was to end %s", endedAt.UTC().Format("2006-01-02 15:04 UTC"), end.UTC().Format("2006-01-02 15:04 UTC"))
	}
	fmt.Fprintf(&b, `<svg class="embargo" viewBox="0 0 %.0f 84" role="img" aria-labelledby="emb-t emb-d" xmlns="http://www.w3.org/2000/svg">`, svgWidth)
	fmt.Fprintf(&b, `<title id="emb-t">Embargo timeline</title><desc id="emb-d">%s</desc>`, template.HTMLEscapeString(desc))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" class="axis"/>`, svgLeft, svgAxis, svgWidth-svgRight, svgAxis)
	if !end.IsZero() {
		barEnd, cls, endLabel := end, "bar", "ends "
		if !c.EM.InForce() {
			cls, endLabel = "bar ended", "was to end "
			if !endedAt.IsZero() && endedAt.Before(end) {
				barEnd = maxTime(start, endedAt)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="16" class="planned"><title>planned, not reached</title></rect>`,
					x(barEnd), svgAxis-8, max(1, x(end)-x(barEnd)))
			}
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="16" class="%s"/>`, x(start), svgAxis-8, max(2, x(barEnd)-x(start)), cls)
		fmt.Fprintf(&b, `<text x="%.1f" y="78" class="end" text-anchor="end">%s%s</text>`, max(x(end), svgLeft+100), endLabel, end.UTC().Format("2006-01-02"))
	}
	for _, p := range c.Proposals {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" class="proposal"><title>proposed end %s</title></line>`,
			x(p.Terms.End), svgAxis-12, x(p.Terms.End), svgAxis+12, p.Terms.End.UTC().Format("2006-01-02"))
	}
	// Steps drawn at the same place share a label.
	type group struct {
		x      float64
		labels []string
	}
	var groups []group
	for _, m := range marks {
		mx := x(m.at)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="4" class="mark"><title>%s %s</title></circle>`,
			mx, svgAxis, template.HTMLEscapeString(m.label), m.at.UTC().Format("2006-01-02 15:04"))
		if n := len(groups); n > 0 && mx-groups[n-1].x < svgSamePlace {
			groups[n-1].labels = append(groups[n-1].labels, m.label)
			continue
		}
		groups = append(groups, group{x: mx, labels: []string{m.label}})
	}
	var laneEnd [len(svgLanes)]float64
	for i := range laneEnd {
		laneEnd[i] = -svgWidth
	}
	for _, g := range groups {
		text := strings.Join(g.labels, " ")
		if len(g.labels) > svgMaxJoined {
			text = fmt.Sprintf("%s … %s (%d)", g.labels[0], g.labels[len(g.labels)-1], len(g.labels))
		}
		w := labelWidth(text)
		cx := min(max(g.x, w/2), svgWidth-w/2)
		for lane, y := range svgLanes {
			if cx-w/2 < laneEnd[lane]+svgLabelGap {
				continue
			}
			laneEnd[lane] = cx + w/2
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="label">%s</text>`, cx, y, template.HTMLEscapeString(text))
			break
		}
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" class="now"><title>now</title></line>`, x(now), svgAxis-16, x(now), svgAxis+16)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// stateSVG draws the case state: the case's p, x, a and each vendor's or
// deployer's v, f, d as boxes, lit when the event has happened. Each
// vendor and deployer is named as who names it, with its id as tooltip.
func stateSVG(c *cases.Case, who func(id string) actorName) template.HTML {
	type row struct {
		label   string
		id      string
		letters string // lower case: not yet; upper case: happened
	}
	rows := []row{{"world", "", c.PXA.String()}}
	more := 0
	for _, p := range c.Participants {
		if p.Removed {
			continue
		}
		if tracksVFD(p.Roles) {
			if len(rows) > maxStateRows {
				more++
				continue
			}
			rows = append(rows, row{problem.Clip(who(p.Actor).Label, 22), p.Actor, cvdstate.FixPath(p.Roles, p.VFD)})
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
		title := ""
		if r.id != "" {
			title = "<title>" + template.HTMLEscapeString(r.id) + "</title>"
		}
		fmt.Fprintf(&b, `<text x="0" y="%.1f" class="who">%s%s</text>`, y+box*0.7, title, template.HTMLEscapeString(r.label))
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
