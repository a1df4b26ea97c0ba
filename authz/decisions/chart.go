package decisions

import (
	"bytes"
	"fmt"
)

// Chart sizes, in SVG user units.
const (
	chartW, chartH          = 960, 180
	padL, padR, padT, padB  = 40, 8, 30, 22
	colorAllowed, colorDeny = "#36c28a", "#ff4d5e"
	colorText, colorLine    = "#9aa3b2", "#2a2f3a"
)

// Chart renders minutes (oldest first) as an SVG bar chart: per minute, the allowed decisions
// with the denied ones stacked on top, a legend with the totals and a scale. It holds only
// numbers and fixed words, and it is a standalone image (no script, no external reference).
func Chart(minutes []Minute) []byte {
	var allowed, denied, top uint64
	for _, m := range minutes {
		allowed += m.Allowed
		denied += m.Denied
		top = max(top, m.Allowed+m.Denied)
	}
	scale := niceCeil(top)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" font-family="system-ui, sans-serif" font-size="12">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<title>Decisions per minute, last %d minutes: %d allowed, %d denied</title>`, len(minutes), allowed, denied)
	// Legend.
	fmt.Fprintf(&b, `<rect x="%d" y="8" width="10" height="10" rx="2" fill="%s"/><text x="%d" y="17" fill="%s">allowed %d</text>`, padL, colorAllowed, padL+15, colorText, allowed)
	fmt.Fprintf(&b, `<rect x="%d" y="8" width="10" height="10" rx="2" fill="%s"/><text x="%d" y="17" fill="%s">denied %d</text>`, padL+120, colorDeny, padL+135, colorText, denied)
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	base := padT + plotH
	// Scale: 0, half and the top, as grid lines.
	for _, v := range []uint64{0, scale / 2, scale} {
		y := base - int(v*uint64(plotH)/scale)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/><text x="%d" y="%d" fill="%s" text-anchor="end">%d</text>`,
			padL, y, chartW-padR, y, colorLine, padL-6, y+4, colorText, v)
	}
	if n := len(minutes); n > 0 {
		slot := float64(plotW) / float64(n)
		w := max(slot-2, 1)
		for i, m := range minutes {
			x := float64(padL) + float64(i)*slot + 1
			ha := float64(m.Allowed) * float64(plotH) / float64(scale)
			hd := float64(m.Denied) * float64(plotH) / float64(scale)
			if m.Allowed > 0 {
				fmt.Fprintf(&b, `<rect class="allowed" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d allowed</title></rect>`,
					x, float64(base)-ha, w, ha, colorAllowed, m.Start.Format("15:04 UTC"), m.Allowed)
			}
			if m.Denied > 0 {
				fmt.Fprintf(&b, `<rect class="denied" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d denied</title></rect>`,
					x, float64(base)-ha-hd, w, hd, colorDeny, m.Start.Format("15:04 UTC"), m.Denied)
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%d min ago</text>`, padL, chartH-6, colorText, n)
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s" text-anchor="end">now</text>`, chartW-padR, chartH-6, colorText)
	}
	if allowed+denied == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s" text-anchor="middle">No decisions in the last hour</text>`, padL+plotW/2, padT+plotH/2, colorText)
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// niceCeil returns the smallest of 2, 4, 10, 20, 40, 100, ... (1, 2, 5 times a power of ten,
// doubled so the half line is a whole number) that is at least v.
func niceCeil(v uint64) uint64 {
	for p := uint64(1); p < 1e17; p *= 10 {
		for _, f := range []uint64{2, 4, 10} {
			if f*p >= v {
				return f * p
			}
		}
	}
	return v
}
