package runner

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WritePlot draws p99 latency against the measured delivery rate for every
// step of the maximum-rate scenario, one line per server, as a PNG.
func WritePlot(path string, rep *Report) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("p99 latency vs. delivery rate, %d subscribers", rep.Plan.MaxRateSubs)
	p.X.Label.Text = "deliveries per second (measured)"
	p.Y.Label.Text = "p99 latency (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{}, logTicks{plain: true}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	lo, hi := 0.0, 0.0
	i := 0
	for _, name := range serversIn(rep, ScMaxRate) {
		var xys plotter.XYs
		for _, r := range rep.Results {
			if r.Scenario != ScMaxRate || r.Server != name {
				continue
			}
			for _, s := range r.Steps {
				if s.P99Ms <= 0 || s.Retried {
					continue
				}
				x := s.DeliveriesSec
				if x <= 0 {
					continue
				}
				xys = append(xys, plotter.XY{X: x, Y: s.P99Ms})
				if lo == 0 || x < lo {
					lo = x
				}
				hi = max(hi, x)
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i)
		pts.Color = plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(name, l, pts)
		i++
	}
	if i == 0 {
		return nil // nothing to draw
	}
	p.Y.Max *= 4 // room for the legend above the lines
	limit := plotter.NewFunction(func(float64) float64 { return rep.Plan.MaxP99Ms })
	limit.Color = color.Gray{Y: 120}
	limit.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	limit.XMin, limit.XMax = lo, hi
	p.Add(limit)
	p.Legend.Add(fmt.Sprintf("%g ms limit", rep.Plan.MaxP99Ms), limit)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.Padding = vg.Points(2)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// logTicks marks 1, 2 and 5 times the powers of ten, labelled 100k, 2M...
// or, when plain, 100000, 2000000.
type logTicks struct{ plain bool }

func (lt logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for p := math.Pow(10, math.Floor(math.Log10(lo))); p <= hi; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := m * p
			if v < lo || v > hi {
				continue
			}
			label := short(v)
			if lt.plain {
				label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: label})
		}
	}
	return ticks
}

// short writes 2000000 as 2M and 500 as 500.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
