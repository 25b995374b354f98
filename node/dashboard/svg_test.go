package dashboard

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
)

var svgLabelRE = regexp.MustCompile(`<text x="([0-9.]+)" y="([0-9.]+)" text-anchor="middle" class="label">([^<]*)</text>`)

// TestEmbargoSVGLabels checks that the embargo picture's labels do not
// cover each other when steps happen close together (a proposal accepted
// a second later, then revised and ended), that every step is named, and
// that an embargo that ended early is drawn as ended.
func TestEmbargoSVGLabels(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := t0.Add(20 * 24 * time.Hour)
	steps := []cases.EmbargoStep{
		{At: t0, Message: "EP", To: cvdstate.EMProposed},
		{At: t0.Add(time.Second), Message: "EA", To: cvdstate.EMActive},
		{At: t0.Add(2 * time.Hour), Message: "EV", To: cvdstate.EMRevise},
		{At: t0.Add(3 * time.Hour), Message: "EJ", To: cvdstate.EMActive},
		{At: t0.Add(10 * 24 * time.Hour), Message: "ET", To: cvdstate.EMExited},
	}
	c := &cases.Case{EM: cvdstate.EMExited, History: steps,
		Embargo: &cases.Embargo{Start: t0, End: t0.Add(90 * 24 * time.Hour)}}
	svg := string(embargoSVG(c, now))

	type box struct {
		text                   string
		left, right, top, base float64
	}
	var boxes []box
	named := ""
	for _, m := range svgLabelRE.FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		w := labelWidth(m[3])
		boxes = append(boxes, box{m[3], x - w/2, x + w/2, y - svgFontSize, y + 3})
		named += " " + m[3]
	}
	for _, s := range steps {
		if !strings.Contains(named, s.Message) {
			t.Errorf("no label names %s: labels %q", s.Message, named)
		}
	}
	for i, a := range boxes {
		for _, b := range boxes[i+1:] {
			if a.left < b.right && b.left < a.right && a.top < b.base && b.top < a.base {
				t.Errorf("labels %q and %q overlap: %+v %+v", a.text, b.text, a, b)
			}
		}
	}
	if strings.Contains(svg, ">ends ") || !strings.Contains(svg, "was to end") {
		t.Errorf("an embargo that ended early is drawn as running:\n%s", svg)
	}
}
