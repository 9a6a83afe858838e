package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/runnel-dev/runnel"
)

// barHeight is how many pixels of column x have colour c.
func barHeight(img *image.RGBA, x int, c color.RGBA) int {
	n := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		if img.RGBAAt(x, y) == c {
			n++
		}
	}
	return n
}

// run is a result of events in d.
func run(q string, g runnel.Guarantee, events int64, d time.Duration) nexmarkResult {
	return nexmarkResult{query: q, guarantee: g, input: events, elapsed: d}
}

func TestDrawPlotBarsGrowWithTheRate(t *testing.T) {
	queries := []string{"q0", "q1"}
	rs := []nexmarkResult{
		run("q0", runnel.ExactlyOnce, 100_000, time.Second), // 100k/s
		run("q0", runnel.AtLeastOnce, 100_000, 10*time.Second),
		run("q1", runnel.ExactlyOnce, 100_000, 100*time.Second), // 1k/s
		run("q1", runnel.AtLeastOnce, 100_000, 10*time.Second),
	}
	ks := []nexmarkResult{run("q0", runnel.ExactlyOnce, 100_000, 10*time.Second)}
	img := drawPlot(rs, ks, queries, "test")
	if path := os.Getenv("STREAMBENCH_PLOT_OUT"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}
	eos := plotSeriesList[0].color
	// The first bar of each group: q0's at 100k/s, q1's at 1k/s, on an
	// axis from 100 to 100k (three decades: 1k is on a decade's line, and
	// gets a bar).
	groupW := float64(plotW-marginR-marginL) / 2
	barW := int(groupW / float64(len(plotSeriesList)+1))
	x0 := marginL + barW/2 + barW/2
	x1 := marginL + int(groupW) + barW/2 + barW/2
	h0, h1 := barHeight(img, x0, eos), barHeight(img, x1, eos)
	if want := plotH - marginB - marginT; h0 != want {
		t.Errorf("q0's bar at the axis' top is %d px high, want %d", h0, want)
	}
	if want := (plotH - marginB - marginT) / 3; h1 < want-2 || h1 > want+2 {
		t.Errorf("q1's bar at 1k/s is %d px high, want about %d", h1, want)
	}
	// Kafka Streams ran only q0 exactly-once, at 10k/s: two thirds up.
	ksx := x0 + 2*barW
	if h, want := barHeight(img, ksx, plotSeriesList[2].color), 2*(plotH-marginB-marginT)/3; h < want-2 || h > want+2 {
		t.Errorf("Kafka Streams' q0 bar is %d px high, want about %d", h, want)
	}
	if h := barHeight(img, ksx+barW, plotSeriesList[3].color); h != 0 {
		t.Errorf("a run that was not made has a bar %d px high", h)
	}
}
