//! A chart as data (what to draw), and its drawing with plotters on any backend: SVG for the
//! HTML page, a bitmap for `--format png`. Building the data is pure; only `draw` touches a
//! backend.
use plotters::chart::{ChartContext, SeriesAnno};
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One colour per series, distinguishable in print and by most colour-blind readers
/// (Okabe-Ito).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];
const RED: RGBColor = RGBColor(200, 30, 30);
const GRID: RGBColor = RGBColor(232, 232, 232);

pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 340;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Line,
    /// Markers joined by a line: few points, each a measurement.
    LinePoints,
    Points,
    /// Bars from zero, `width` wide in x units, centred on x (or, on a log axis, ending at x).
    Bars,
    /// Horizontal spans: each point is (x0, x1) on the row given by `rows`.
    Spans,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: usize,
    pub shape: Shape,
    /// `None` y leaves a gap in a line.
    pub points: Vec<(f64, Option<f64>)>,
    /// Row of each span, for `Shape::Spans`.
    pub rows: Vec<f64>,
}

impl Series {
    pub fn new(name: impl Into<String>, colour: usize, shape: Shape) -> Self {
        Series {
            name: name.into(),
            colour,
            shape,
            points: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn with_points(mut self, points: Vec<(f64, Option<f64>)>) -> Self {
        self.points = points;
        self
    }

    fn drawn(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .filter_map(|(x, y)| y.map(|y| (*x, y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// A labelled line across the plot: an SLO limit, a target rate, a percentile, the knee.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub label: String,
    pub at: f64,
    pub colour: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Axis {
    pub label: String,
    pub log: bool,
}

impl Axis {
    pub fn new(label: impl Into<String>) -> Self {
        Axis {
            label: label.into(),
            log: false,
        }
    }

    pub fn log(label: impl Into<String>) -> Self {
        Axis {
            label: label.into(),
            log: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The element id in the page (`chart-<id>`) and the PNG's file name.
    pub id: String,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Horizontal rules (y values).
    pub hrules: Vec<Rule>,
    /// Vertical rules (x values).
    pub vrules: Vec<Rule>,
    /// Labelled points (the knee).
    pub marks: Vec<(f64, f64, String)>,
    /// Bar width in x units for `Shape::Bars` on a linear axis.
    pub bar_width: f64,
    /// Row labels for a span chart, bottom up.
    pub row_labels: Vec<String>,
    /// A line under the chart: what it shows, where the data came from.
    pub note: Option<String>,
}

impl Chart {
    pub fn new(id: &str, title: &str, x: Axis, y: Axis) -> Self {
        Chart {
            id: id.to_string(),
            title: title.to_string(),
            x,
            y,
            series: Vec::new(),
            hrules: Vec::new(),
            vrules: Vec::new(),
            marks: Vec::new(),
            bar_width: 1.0,
            row_labels: Vec::new(),
            note: None,
        }
    }

    pub fn series(mut self, s: Series) -> Self {
        if s.drawn().next().is_some() {
            self.series.push(s);
        }
        self
    }

    pub fn hrule(mut self, label: impl Into<String>, at: f64, colour: Option<usize>) -> Self {
        if at.is_finite() {
            self.hrules.push(Rule {
                label: label.into(),
                at,
                colour,
            });
        }
        self
    }

    pub fn vrule(mut self, label: impl Into<String>, at: f64, colour: Option<usize>) -> Self {
        if at.is_finite() {
            self.vrules.push(Rule {
                label: label.into(),
                at,
                colour,
            });
        }
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Self {
        self.note = Some(n.into());
        self
    }

    /// Whether there is anything to draw.
    pub fn has_data(&self) -> bool {
        !self.series.is_empty()
    }

    /// The data's extent with some headroom, rules and marks included.
    fn extent(&self) -> ((f64, f64), (f64, f64)) {
        let mut xs: Vec<f64> = Vec::new();
        let mut ys: Vec<f64> = Vec::new();
        for s in &self.series {
            for (x, y) in s.drawn() {
                match s.shape {
                    Shape::Spans => {
                        xs.push(x);
                        xs.push(y);
                    }
                    Shape::Bars => {
                        xs.push(x);
                        ys.push(y);
                        ys.push(0.0);
                        if !self.x.log {
                            xs.push(x - self.bar_width / 2.0);
                            xs.push(x + self.bar_width / 2.0);
                        }
                    }
                    _ => {
                        xs.push(x);
                        ys.push(y);
                    }
                }
            }
            ys.extend(s.rows.iter().flat_map(|r| [r - 0.5, r + 0.5]));
        }
        ys.extend(self.hrules.iter().map(|r| r.at));
        xs.extend(self.vrules.iter().map(|r| r.at));
        let range = |v: &[f64], log: bool, pad_top: f64| {
            let v: Vec<f64> = v
                .iter()
                .copied()
                .filter(|x| x.is_finite() && (!log || *x > 0.0))
                .collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() {
                return if log { (0.1, 10.0) } else { (0.0, 1.0) };
            }
            if log {
                let (lo, hi) = (lo / 1.3, hi * 1.3);
                return if hi / lo < 2.0 {
                    (lo / 2.0, hi * 2.0)
                } else {
                    (lo, hi)
                };
            }
            let lo = if lo >= 0.0 { 0.0 } else { lo };
            let span = (hi - lo).abs().max(hi.abs() * 0.1).max(1e-9);
            (lo, hi + span * pad_top)
        };
        (range(&xs, self.x.log, 0.02), range(&ys, self.y.log, 0.12))
    }
}

/// Compact numbers for axis labels: 1.5k, 0.25, 12.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else if a >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(v)
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

type DrawResult<E> = Result<(), DrawingAreaErrorKind<E>>;

/// Draws the chart on `root`, whatever the backend.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Chart,
) -> Result<(), String> {
    let ((x0, x1), (y0, y1)) = c.extent();
    // plotters labels a log axis at powers of ten only: over less than two decades that is one
    // label or none, and a linear axis reads better.
    let (lx, ly) = (c.x.log && x1 / x0 >= 100.0, c.y.log && y1 / y0 >= 100.0);
    let mut c = c.clone();
    for (axis, log) in [(&mut c.x, lx), (&mut c.y, ly)] {
        if axis.log && !log {
            axis.label = axis.label.replace(" (log)", "");
        }
    }
    let c = &c;
    let r = match (lx, ly) {
        (false, false) => plot(root, c, x0..x1, y0..y1),
        (true, false) => plot(root, c, (x0..x1).log_scale(), y0..y1),
        (false, true) => plot(root, c, x0..x1, (y0..y1).log_scale()),
        (true, true) => plot(root, c, (x0..x1).log_scale(), (y0..y1).log_scale()),
    };
    r.map_err(|e| format!("chart {}: {e}", c.id))
}

fn plot<DB, X, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Chart,
    xs: X,
    ys: Y,
) -> DrawResult<DB::ErrorType>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let spans = c.series.iter().any(|s| s.shape == Shape::Spans);
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(if spans { 24 } else { 64 })
        .build_cartesian_2d(xs, ys)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(c.x.label.as_str())
        .y_desc(c.y.label.as_str())
        .x_labels(8)
        .y_labels(if spans { 0 } else { 6 })
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_desc_style(("sans-serif", 13))
        .label_style(("sans-serif", 12))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v));
    mesh.draw()?;
    series::<DB, X, Y>(&mut chart, c)?;
    rules_and_marks::<DB, X, Y>(&mut chart, c)?;
    if c.series.len() + c.hrules.len() + c.vrules.len() > 1
        || c.series.iter().any(|s| s.shape == Shape::Spans)
    {
        chart
            .configure_series_labels()
            // A marked knee sits at the right, where the load is highest.
            .position(if c.marks.is_empty() {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::UpperLeft
            })
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The plotting area plotters builds for a chart of two `f64` axes.
type Area<'a, DB, X, Y> = ChartContext<
    'a,
    DB,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

/// Each series in its shape.
fn series<DB, X, Y>(chart: &mut Area<'_, DB, X, Y>, c: &Chart) -> DrawResult<DB::ErrorType>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
{
    let (_, (y0, _)) = c.extent();
    for s in &c.series {
        let colour = PALETTE[s.colour % PALETTE.len()];
        let style = colour.stroke_width(2);
        let legend = |anno: &mut SeriesAnno<DB>| {
            anno.label(s.name.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 4), (x + 14, y + 4)], colour.filled())
            });
        };
        match s.shape {
            Shape::Line | Shape::LinePoints => {
                let mut labelled = false;
                for run in segments(&s.points) {
                    let a = chart.draw_series(LineSeries::new(run.clone(), style))?;
                    if !labelled {
                        legend(a);
                        labelled = true;
                    }
                    if s.shape == Shape::LinePoints {
                        chart
                            .draw_series(run.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
                    }
                }
            }
            Shape::Points => {
                let a = chart.draw_series(s.drawn().map(|p| Circle::new(p, 3, colour.filled())))?;
                legend(a);
            }
            Shape::Bars => {
                let w = c.bar_width;
                let log = c.x.log;
                let base = if c.y.log { y0 } else { 0.0 };
                let a = chart.draw_series(s.drawn().map(|(x, y)| {
                    let (l, r) = if log {
                        (x / w, x)
                    } else {
                        (x - w / 2.0, x + w / 2.0)
                    };
                    Rectangle::new([(l, base), (r, y)], colour.mix(0.75).filled())
                }))?;
                legend(a);
            }
            Shape::Spans => {
                let a = chart.draw_series(s.drawn().zip(&s.rows).map(|((a, b), row)| {
                    Rectangle::new([(a, row - 0.4), (b.max(a), row + 0.4)], colour.filled())
                }))?;
                legend(a);
            }
        }
    }
    Ok(())
}

/// SLO lines, target rates, percentiles, and the marked knee.
fn rules_and_marks<DB, X, Y>(chart: &mut Area<'_, DB, X, Y>, c: &Chart) -> DrawResult<DB::ErrorType>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
{
    let ((x0, x1), (y0, y1)) = c.extent();
    // Rules are named in the legend, not beside the line: several percentiles close together
    // would print over each other.
    let lines = c
        .hrules
        .iter()
        .map(|r| (r, [(x0, r.at), (x1, r.at)]))
        .chain(c.vrules.iter().map(|r| (r, [(r.at, y0), (r.at, y1)])));
    for (r, ends) in lines {
        let colour = r.colour.map_or(RED, |i| PALETTE[i % PALETTE.len()]);
        chart
            .draw_series(DashedLineSeries::new(ends, 6, 4, colour.stroke_width(2)))?
            .label(r.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
            });
    }
    let middle = if c.x.log {
        (x0 * x1).sqrt()
    } else {
        (x0 + x1) / 2.0
    };
    for (x, y, label) in &c.marks {
        let h = if *x > middle { HPos::Right } else { HPos::Left };
        chart.draw_series(std::iter::once(Circle::new(
            (*x, *y),
            7,
            RED.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*x, *y),
            ("sans-serif", 13)
                .into_font()
                .color(&RED)
                .pos(Pos::new(h, VPos::Bottom)),
        )))?;
    }
    Ok(())
}

/// Runs of consecutive points with a y: a missing value breaks the line.
fn segments(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) if y.is_finite() && x.is_finite() => {
                out.last_mut().expect("one run").push((*x, *y))
            }
            _ => {
                if !out.last().expect("one run").is_empty() {
                    out.push(Vec::new());
                }
            }
        }
    }
    out.retain(|r| !r.is_empty());
    out
}
