//! Inline SVG line charts for `report.html`: no script, no network, readable when the file is
//! opened from a CI artifact. Shaded bands mark fault windows, dashed lines thresholds.

use std::fmt::{self, Write};

pub struct Line<'a> {
    pub label: &'a str,
    pub values: &'a [Option<f64>],
    pub color: &'a str,
}

/// (from s, to s, label): a shaded window, e.g. a fault.
pub type Band = (f64, f64, String);

pub struct Chart<'a> {
    pub id: String,
    pub title: &'a str,
    pub unit: &'a str,
    pub x: &'a [f64],
    pub lines: Vec<Line<'a>>,
    /// (value, label) drawn as dashed horizontal lines.
    pub thresholds: Vec<(f64, String)>,
    /// Shaded windows.
    pub bands: &'a [Band],
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const L: f64 = 56.0;
const R: f64 = 12.0;
const T: f64 = 28.0;
const B: f64 = 30.0;

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_tick(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if v >= 1000.0 {
        format!("{}k", trim(format!("{:.2}", v / 1000.0)))
    } else {
        trim(format!("{v:.4}"))
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Data coordinates to SVG pixels.
struct Scale {
    x_max: f64,
    y_max: f64,
}

impl Scale {
    fn x(&self, x: f64) -> f64 {
        L + (x / self.x_max) * (WIDTH - L - R)
    }

    fn y(&self, y: f64) -> f64 {
        T + (1.0 - (y / self.y_max).clamp(0.0, 1.05)) * (HEIGHT - T - B)
    }
}

impl Chart<'_> {
    /// Points that have a value; a chart with none says so instead of drawing empty axes.
    pub fn points(&self) -> usize {
        self.lines
            .iter()
            .map(|l| l.values.iter().filter(|v| v.is_some()).count())
            .sum()
    }

    /// Writes the chart as a `<figure>`: the SVG, then the legend.
    pub fn render<W: Write>(&self, out: &mut W) -> fmt::Result {
        write!(
            out,
            r#"<figure class="chart" id="{}" data-points="{}"><figcaption>{}</figcaption>"#,
            self.id,
            self.points(),
            esc(self.title)
        )?;
        let sc = self.scale();
        write!(
            out,
            r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{}">"#,
            esc(self.title)
        )?;
        self.print_bands(out, &sc)?;
        print_y_axis(out, &sc)?;
        print_x_axis(out, &sc)?;
        write!(
            out,
            r##"<text x="8" y="16" font-size="11" fill="#555">{}</text>"##,
            esc(self.unit)
        )?;
        self.print_thresholds(out, &sc)?;
        self.print_series(out, &sc)?;
        out.write_str("</svg>")?;
        self.print_legend(out)?;
        out.write_str("</figure>")
    }

    /// Axis maxima: the last second, and room for the data and every threshold line.
    fn scale(&self) -> Scale {
        let x_max = self.x.iter().copied().fold(1.0f64, f64::max);
        let data_max = self
            .lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .copied()
            .fold(0.0f64, f64::max);
        let th_max = self.thresholds.iter().map(|t| t.0).fold(0.0f64, f64::max);
        Scale {
            x_max,
            y_max: nice_max(data_max.max(th_max * 1.05)),
        }
    }

    fn print_bands<W: Write>(&self, out: &mut W, sc: &Scale) -> fmt::Result {
        for (from, to, label) in self.bands {
            write!(
                out,
                r##"<rect class="band" x="{:.1}" y="{T}" width="{:.1}" height="{:.1}" fill="#f5a623" fill-opacity="0.18"><title>{}</title></rect>"##,
                sc.x(*from),
                (sc.x(*to) - sc.x(*from)).max(1.0),
                HEIGHT - T - B,
                esc(label)
            )?;
        }
        Ok(())
    }

    fn print_thresholds<W: Write>(&self, out: &mut W, sc: &Scale) -> fmt::Result {
        for (v, label) in &self.thresholds {
            let y = sc.y(*v);
            write!(
                out,
                r##"<line class="threshold" x1="{L}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#d0021b" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#d0021b">{}</text>"##,
                WIDTH - R,
                WIDTH - R - 2.0,
                y - 4.0,
                esc(label)
            )?;
        }
        Ok(())
    }

    /// One path per line; a second without a value lifts the pen.
    fn print_series<W: Write>(&self, out: &mut W, sc: &Scale) -> fmt::Result {
        for line in &self.lines {
            let mut d = String::new();
            let mut pen_up = true;
            for (x, v) in self.x.iter().zip(line.values) {
                match v {
                    Some(v) => {
                        let pen = if pen_up { "M" } else { "L" };
                        write!(d, "{pen}{:.1},{:.1} ", sc.x(*x), sc.y(*v))?;
                        pen_up = false;
                    }
                    None => pen_up = true,
                }
            }
            if !d.is_empty() {
                write!(
                    out,
                    r#"<path class="series" d="{}" fill="none" stroke="{}" stroke-width="1.8"><title>{}</title></path>"#,
                    d.trim(),
                    line.color,
                    esc(line.label)
                )?;
            }
        }
        Ok(())
    }

    fn print_legend<W: Write>(&self, out: &mut W) -> fmt::Result {
        out.write_str("<div class=\"legend\">")?;
        for line in &self.lines {
            write!(
                out,
                r#"<span><i style="background:{}"></i>{}</span>"#,
                line.color,
                esc(line.label)
            )?;
        }
        out.write_str("</div>")
    }
}

/// Five horizontal grid lines with their values.
fn print_y_axis<W: Write>(out: &mut W, sc: &Scale) -> fmt::Result {
    for i in 0..=4 {
        let v = sc.y_max * f64::from(i) / 4.0;
        let y = sc.y(v);
        write!(
            out,
            r##"<line x1="{L}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            WIDTH - R,
            L - 6.0,
            y + 4.0,
            fmt_tick(v)
        )?;
    }
    Ok(())
}

/// Seconds along the bottom, about eight ticks.
fn print_x_axis<W: Write>(out: &mut W, sc: &Scale) -> fmt::Result {
    let step = nice_max(sc.x_max / 8.0).max(1.0);
    let mut t = 0.0;
    while t <= sc.x_max {
        write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555">{}s</text>"##,
            sc.x(t),
            HEIGHT - 10.0,
            fmt_tick(t)
        )?;
        t += step;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_lines_thresholds_and_bands() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let v = [Some(1.0), None, Some(3.0), Some(2.0)];
        let bands = [(1.0, 2.0, "fault".to_owned())];
        let c = Chart {
            id: "c".into(),
            title: "t <x>",
            unit: "ms",
            x: &x,
            lines: vec![Line {
                label: "p95",
                values: &v,
                color: "#000",
            }],
            thresholds: vec![(2.5, "p(95)<2.5".into())],
            bands: &bands,
        };
        let mut svg = String::new();
        c.render(&mut svg).unwrap();
        assert_eq!(c.points(), 3);
        assert!(svg.contains("class=\"threshold\"") && svg.contains("class=\"band\""));
        assert_eq!(
            svg.matches(" M").count() + svg.matches("\"M").count(),
            2,
            "a gap lifts the pen: {svg}"
        );
        assert!(svg.contains("t &lt;x&gt;"));
    }

    #[test]
    fn ticks_keep_their_precision() {
        assert_eq!(fmt_tick(0.0075), "0.0075");
        assert_eq!(fmt_tick(1500.0), "1.5k");
        assert_eq!(fmt_tick(37.5), "37.5");
        assert_eq!(fmt_tick(0.0), "0");
    }

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(87.0), 100.0);
        assert_eq!(nice_max(1300.0), 2000.0);
        assert_eq!(nice_max(0.03), 0.05);
    }
}
