package sim

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// WriteSVG draws runs side by side: for each desideratum, one bar per run
// with the fraction of its cases that met it, and a mark at the random
// baseline. It is a plain SVG document with no script, for a page or a
// pull request.
func WriteSVG(w io.Writer, title string, runs []Result) error {
	if len(runs) == 0 {
		return fmt.Errorf("draw simulation: no runs")
	}
	const (
		left, top, rowH, plotW = 70, 40, 26, 520
		legendW                = 240
	)
	colours := []string{"#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756"}
	rows := len(runs[0].Desiderata)
	height := top + rows*rowH + 50 + 18*len(runs)
	width := left + plotW + legendW
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for i := 0; i <= 10; i += 2 {
		x := left + plotW*i/10
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", x, top-4, x, top+rows*rowH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">%d%%</text>`+"\n", x, top+rows*rowH+14, i*10)
	}
	barH := float64(rowH-6) / float64(len(runs))
	for i := range rows {
		y := top + i*rowH
		d := runs[0].Desiderata[i]
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+rowH/2+4, html.EscapeString(d.Desideratum.String()))
		for k, r := range runs {
			f := r.Desiderata[i].Fraction
			by := float64(y) + 3 + float64(k)*barH
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.1f%% met (baseline %.1f%%, skill %+.2f)</title></rect>`+"\n",
				left, by, f*plotW, barH-1, colours[k%len(colours)], html.EscapeString(r.Policy), html.EscapeString(d.Desideratum.String()),
				100*f, 100*r.Desiderata[i].Baseline, r.Desiderata[i].Skill)
		}
		bx := float64(left) + d.Baseline*plotW
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>`+"\n", bx, y+1, bx, y+rowH-1)
	}
	ly := top + rows*rowH + 34
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black" stroke-width="2"/><text x="%d" y="%d">random-walk baseline</text>`+"\n", left, ly-10, left, ly+2, left+8, ly)
	for k, r := range runs {
		y := ly + 18*(k+1)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s: mean skill %+.2f over %d cases</text>`+"\n",
			left, y-10, colours[k%len(colours)], left+18, y, html.EscapeString(r.Policy), r.Skill, r.Cases)
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("draw simulation: %w", err)
	}
	return nil
}
