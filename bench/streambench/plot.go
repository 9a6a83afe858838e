package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/runnel-dev/runnel"
)

// The plot of the Nexmark comparison (-plot FILE.png): events/s per query,
// one group of bars per query (Runnel and Kafka Streams, each under
// exactly-once and at-least-once), on a logarithmic axis, since the two
// engines' rates are up to an order of magnitude apart. Drawn with the
// standard library's image packages and basicfont's 7x13 face.

// plotSeries is one bar of each group.
type plotSeries struct {
	label     string
	kstreams  bool
	guarantee runnel.Guarantee
	color     color.RGBA
}

var plotSeriesList = []plotSeries{
	{"Runnel exactly-once", false, runnel.ExactlyOnce, color.RGBA{0x1f, 0x4e, 0x9c, 0xff}},
	{"Runnel at-least-once", false, runnel.AtLeastOnce, color.RGBA{0x7f, 0xa8, 0xe0, 0xff}},
	{"Kafka Streams exactly-once", true, runnel.ExactlyOnce, color.RGBA{0xc2, 0x5a, 0x0c, 0xff}},
	{"Kafka Streams at-least-once", true, runnel.AtLeastOnce, color.RGBA{0xf2, 0xb0, 0x70, 0xff}},
}

// Plot geometry, in pixels.
const (
	plotW, plotH = 1000, 520
	marginL      = 70  // the axis labels
	marginR      = 20  //
	marginT      = 50  // the title
	marginB      = 110 // the query names and the legend
)

// writePlot draws the Nexmark results on the first broker of
// -nexmark-broker as a PNG file at path.
func (b *bench) writePlot(path, title string) error {
	on := func(rs []nexmarkResult) []nexmarkResult {
		return slices.DeleteFunc(slices.Clone(rs), func(r nexmarkResult) bool { return r.broker != b.nexmarkBrokers[0] })
	}
	img := drawPlot(on(b.nexmarks), on(b.kstreams), b.nexmarkQueries, title)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	return f.Close()
}

// drawPlot draws the bars of the queries that have at least one run.
func drawPlot(runnelRuns, kstreamsRuns []nexmarkResult, queries []string, title string) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 0xff}
	grey := color.RGBA{0xd8, 0xd8, 0xd8, 0xff}

	rate := func(s plotSeries, q string) float64 {
		runs := runnelRuns
		if s.kstreams {
			runs = kstreamsRuns
		}
		i := slices.IndexFunc(runs, func(r nexmarkResult) bool { return r.query == q && r.guarantee == s.guarantee })
		if i < 0 || runs[i].elapsed <= 0 {
			return 0
		}
		return runs[i].eventsPerSec()
	}
	// The axis spans whole decades around every rate.
	lo, hi := math.Inf(1), 0.0
	for _, q := range queries {
		for _, s := range plotSeriesList {
			if v := rate(s, q); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	// A rate on a decade's line still gets a visible bar: the axis starts
	// a decade lower.
	decLo, decHi := math.Floor(math.Log10(lo)-0.01), math.Ceil(math.Log10(hi))
	if decHi == decLo {
		decHi++
	}
	x0, x1 := marginL, plotW-marginR
	y0, y1 := plotH-marginB, marginT // the axis' bottom and top
	yOf := func(v float64) int {
		f := (math.Log10(v) - decLo) / (decHi - decLo)
		return y0 - int(math.Round(f*float64(y0-y1)))
	}

	// Grid lines and labels at 1, 2 and 5 of every decade.
	for d := decLo; d <= decHi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if d == decHi && m > 1 {
				break
			}
			y := yOf(v)
			fillRect(img, x0, y, x1, y+1, grey)
			label := rateLabel(v)
			drawText(img, x0-8-textWidth(label), y+4, label, black)
		}
	}
	fillRect(img, x0, y1, x0+1, y0+1, black)
	fillRect(img, x0, y0, x1, y0+1, black)
	drawText(img, 8, y1-12, "events/s (log scale)", black)
	drawText(img, (plotW-textWidth(title))/2, 22, title, black)

	// One group per query: four bars and a gap the width of one.
	n := len(plotSeriesList)
	groupW := float64(x1-x0) / float64(max(len(queries), 1))
	barW := int(groupW / float64(n+1))
	for i, q := range queries {
		gx := x0 + int(float64(i)*groupW) + barW/2
		for j, s := range plotSeriesList {
			v := rate(s, q)
			if v <= 0 {
				continue
			}
			bx := gx + j*barW
			fillRect(img, bx+1, yOf(v), bx+barW-1, y0, s.color)
		}
		drawText(img, gx+(n*barW-textWidth(q))/2, y0+18, q, black)
	}

	// The legend, in two columns under the query names.
	for j, s := range plotSeriesList {
		lx := x0 + (j%2)*((x1-x0)/2)
		ly := y0 + 44 + (j/2)*22
		fillRect(img, lx, ly-10, lx+14, ly+2, s.color)
		drawText(img, lx+20, ly, s.label, black)
	}
	return img
}

// rateLabel writes a rate as 500, 2k, 50k or 1M.
func rateLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func fillRect(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	draw.Draw(img, image.Rect(xa, ya, xb, yb), &image.Uniform{c}, image.Point{}, draw.Src)
}

// drawText writes s with its baseline at y, starting at x.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Round()
}
