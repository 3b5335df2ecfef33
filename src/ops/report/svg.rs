//! The report's charts as inline SVG, drawn by hand: a page that opens anywhere, offline,
//! with no script. Every text that goes in is escaped; colours come from the page's CSS
//! classes, so the charts and the tables beside them match.

use std::fmt::Write;

use super::html::escape;

/// One part of a horizontal bar.
pub struct Segment {
    pub value: f64,
    /// The CSS class that colours it.
    pub class: &'static str,
    /// Its tooltip.
    pub title: String,
}

/// One horizontal bar: its label, its parts (stacked left to right) and the figure after it.
pub struct Bar {
    pub label: String,
    pub segments: Vec<Segment>,
    pub caption: String,
}

const LABEL_WIDTH: f64 = 140.0;
const BAR_AREA: f64 = 460.0;
const CAPTION_WIDTH: f64 = 200.0;
const ROW: f64 = 30.0;

/// Horizontal bars scaled to the longest one.
pub fn horizontal_bars(title: &str, bars: &[Bar]) -> String {
    let width = LABEL_WIDTH + BAR_AREA + CAPTION_WIDTH;
    let height = ROW * bars.len() as f64 + 10.0;
    let longest = bars
        .iter()
        .map(|b| b.segments.iter().map(|s| s.value).sum::<f64>())
        .fold(0.0, f64::max);
    let scale = if longest > 0.0 {
        BAR_AREA / longest
    } else {
        0.0
    };
    let mut out = open(title, width, height);
    for (i, bar) in bars.iter().enumerate() {
        let y = 5.0 + ROW * i as f64;
        let middle = y + ROW / 2.0;
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{middle:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            LABEL_WIDTH - 8.0,
            escape(&bar.label)
        );
        let mut x = LABEL_WIDTH;
        for segment in bar.segments.iter().filter(|s| s.value > 0.0) {
            let w = segment.value * scale;
            let _ = write!(
                out,
                r#"<rect class="bar {}" x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}"><title>{}</title></rect>"#,
                segment.class,
                y + 4.0,
                ROW - 8.0,
                escape(&segment.title)
            );
            x += w;
        }
        let _ = write!(
            out,
            r#"<text class="value" x="{:.1}" y="{middle:.1}" dominant-baseline="middle">{}</text>"#,
            x + 6.0,
            escape(&bar.caption)
        );
    }
    out.push_str("</svg>");
    out
}

/// One series of a column chart: its name in the legend and its CSS class.
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
}

const PLOT_HEIGHT: f64 = 220.0;
const GROUP_WIDTH: f64 = 78.0;
const AXIS: f64 = 40.0;

/// Grouped columns: for each group (a label and one value per series), a column per series,
/// with a value axis, the groups' labels and a legend.
pub fn grouped_columns(title: &str, groups: &[(String, Vec<usize>)], series: &[Series]) -> String {
    let width = AXIS + GROUP_WIDTH * groups.len() as f64 + 10.0;
    let top = 30.0;
    let height = top + PLOT_HEIGHT + 30.0;
    let highest = groups
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = PLOT_HEIGHT / highest as f64;
    let bottom = top + PLOT_HEIGHT;
    let mut out = open(title, width, height);
    let mut x = AXIS;
    for s in series {
        let _ = write!(
            out,
            r#"<rect class="bar {}" x="{x:.1}" y="6" width="12" height="12"/><text class="legend" x="{:.1}" y="16">{}</text>"#,
            s.class,
            x + 16.0,
            escape(s.name)
        );
        x += 24.0 + 7.5 * s.name.len() as f64;
    }
    for tick in [0, highest / 2, highest] {
        let y = bottom - tick as f64 * scale;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{AXIS}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{y:.1}" text-anchor="end" dominant-baseline="middle">{tick}</text>"#,
            width - 10.0,
            AXIS - 6.0
        );
    }
    let column = (GROUP_WIDTH - 12.0) / series.len().max(1) as f64;
    for (g, (label, values)) in groups.iter().enumerate() {
        let left = AXIS + GROUP_WIDTH * g as f64 + 6.0;
        for (i, (value, s)) in values.iter().zip(series).enumerate() {
            if *value == 0 {
                continue;
            }
            let h = *value as f64 * scale;
            let _ = write!(
                out,
                r#"<rect class="bar {}" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {value} {}</title></rect>"#,
                s.class,
                left + column * i as f64,
                bottom - h,
                column - 1.0,
                escape(label),
                escape(s.name)
            );
        }
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + (GROUP_WIDTH - 12.0) / 2.0,
            bottom + 18.0,
            escape(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// The chart's opening tag and accessible title.
fn open(title: &str, width: f64, height: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{0}" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}"><title>{0}</title>"#,
        escape(title)
    )
}
