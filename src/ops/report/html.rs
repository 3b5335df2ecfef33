//! The report as one self-contained HTML page: inline CSS, inline SVG charts, no script and
//! nothing fetched, so it can be mailed or archived and opened anywhere. Every string from
//! the store or the configuration (level names, the time zone) is escaped.

use std::fmt::Write;

use super::svg::{grouped_columns, horizontal_bars, Bar, Segment, Series};
use super::{level_name, shown, Report, DEFINITIONS, MOVEMENT};

/// Text made safe for HTML and SVG, in content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; color: #1d2330; margin: 2rem auto; max-width: 1060px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.sub { color: #5b6475; margin-top: 0; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #d8dce4; border-radius: 8px; padding: .8rem 1rem; min-width: 210px; }
.card b { display: block; font-size: 1.7rem; } .card span { color: #5b6475; font-size: .85rem; }
table { border-collapse: collapse; margin-top: .6rem; } th, td { padding: .25rem .7rem; text-align: right; border-bottom: 1px solid #e6e8ee; }
th:first-child, td:first-child { text-align: left; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; } svg .axis { fill: #5b6475; }
svg .grid { stroke: #e6e8ee; }
.active, .s0 { fill: #2f6fde; } .grace, .s1 { fill: #f0a92e; } .lapsed, .s2 { fill: #c4473a; }
.none { fill: #b9c0cc; } .clv, .s3 { fill: #7b5cd6; } .s4 { fill: #2aa37a; }
.key { margin-right: 1rem; color: #5b6475; font-size: .85rem; }
.key::before { content: \"\"; display: inline-block; width: 10px; height: 10px; margin-right: 4px; background: var(--c); }
.k-active { --c: #2f6fde; } .k-grace { --c: #f0a92e; } .k-lapsed { --c: #c4473a; } .k-none { --c: #b9c0cc; }
dt { font-weight: 600; margin-top: .5rem; } dd { margin-left: 1rem; color: #3a4252; }
";

/// The page.
pub fn render(report: &Report) -> String {
    let today = report.now.with_timezone(&report.timezone).date_naive();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tiersync report {today}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        out,
        "<h1>VIP program report</h1><p class=\"sub\">{today}, shop time zone {}; {} customers evaluated{}</p>",
        escape(&report.timezone.to_string()),
        report.customers(),
        if report.unevaluated > 0 {
            format!(
                " ({} more with orders not evaluated yet, counted in revenue only)",
                report.unevaluated
            )
        } else {
            String::new()
        }
    );
    cards(&mut out, report);
    distribution(&mut out, report);
    movement(&mut out, report);
    out.push_str("<h2>Definitions</h2><dl>");
    for (term, meaning) in DEFINITIONS {
        let _ = write!(
            out,
            "<dt>{}</dt><dd>{}.</dd>",
            escape(term),
            escape(meaning)
        );
    }
    out.push_str("</dl></body></html>\n");
    out
}

/// The headline figures.
fn cards(out: &mut String, report: &Report) {
    let r = &report.revenue;
    let loyalty = match &report.loyalty {
        Some(l) => (
            l.count.to_string(),
            format!("of {} loyalty-app members", l.members),
        ),
        None => ("n/a".to_string(), "no loyalty app configured".to_string()),
    };
    let cards = [
        (
            "VIP share of revenue",
            shown(r.percent()),
            format!("{} of {} net spend, last 365 days", r.vip, r.all),
        ),
        (
            "Lapse rate",
            shown(report.lapse_rate()),
            format!(
                "{} lapsed of {} holding a level",
                report.lapsed(),
                report.holding_a_level()
            ),
        ),
        ("Loyalty-app disagreements", loyalty.0, loyalty.1),
    ];
    out.push_str("<div class=\"cards\">");
    for (name, figure, detail) in cards {
        let _ = write!(
            out,
            "<div class=\"card\">{}<b>{}</b><span>{}</span></div>",
            escape(name),
            escape(&figure),
            escape(&detail)
        );
    }
    out.push_str("</div>");
}

/// Customers per level and state, average CLV per level, and their table.
fn distribution(out: &mut String, report: &Report) {
    let states = |row: &super::LevelStats| {
        [
            (row.active, "active"),
            (row.grace, "grace"),
            (row.lapsed, "lapsed"),
            (row.none, "none"),
        ]
        .into_iter()
        .map(|(count, class)| Segment {
            value: count as f64,
            class,
            title: format!("{}: {count} {class}", level_name(row)),
        })
        .collect()
    };
    let bars: Vec<Bar> = report
        .levels
        .iter()
        .map(|row| Bar {
            label: level_name(row).to_string(),
            segments: states(row),
            caption: format!("{} customers", row.customers()),
        })
        .collect();
    out.push_str("<h2>Tier distribution</h2><p>");
    for state in ["active", "grace", "lapsed", "none"] {
        let _ = write!(out, "<span class=\"key k-{state}\">{state}</span>");
    }
    out.push_str("</p>");
    out.push_str(&horizontal_bars(
        "Customers per level, by state (active, grace, lapsed)",
        &bars,
    ));
    let clv: Vec<Bar> = report
        .levels
        .iter()
        .map(|row| {
            let average = row.average_clv().unwrap_or_default();
            Bar {
                label: level_name(row).to_string(),
                segments: vec![Segment {
                    value: f64::try_from(average).unwrap_or(0.0),
                    class: "clv",
                    title: format!("{}: average blended CLV {average}", level_name(row)),
                }],
                caption: average.to_string(),
            }
        })
        .collect();
    out.push_str("<h2>Average blended CLV per level</h2>");
    out.push_str(&horizontal_bars("Average blended CLV per level", &clv));
    out.push_str("<table><thead><tr><th>Level</th><th>Customers</th><th>Active</th><th>Grace</th><th>Lapsed</th><th>Repeat-purchase rate</th><th>Average blended CLV</th></tr></thead><tbody>");
    for row in &report.levels {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(level_name(row)),
            row.customers(),
            row.active,
            row.grace,
            row.lapsed,
            shown(row.repeat_rate()),
            row.average_clv()
                .map_or_else(|| "n/a".to_string(), |c| c.to_string())
        );
    }
    out.push_str("</tbody></table>");
}

/// The monthly movement chart and table.
fn movement(out: &mut String, report: &Report) {
    const SERIES: [Series; 5] = [
        Series {
            name: MOVEMENT[0],
            class: "s0",
        },
        Series {
            name: MOVEMENT[1],
            class: "s3",
        },
        Series {
            name: MOVEMENT[2],
            class: "s1",
        },
        Series {
            name: MOVEMENT[3],
            class: "s2",
        },
        Series {
            name: MOVEMENT[4],
            class: "s4",
        },
    ];
    let groups: Vec<(String, Vec<usize>)> = report
        .months
        .iter()
        .map(|m| (m.month.format("%Y-%m").to_string(), m.counts().to_vec()))
        .collect();
    out.push_str("<h2>Tier movement per month</h2>");
    out.push_str(&grouped_columns(
        "Tier movement per month (shop time zone)",
        &groups,
        &SERIES,
    ));
    out.push_str("<table><thead><tr><th>Month</th>");
    for name in MOVEMENT {
        let _ = write!(out, "<th>{}</th>", escape(name));
    }
    out.push_str("</tr></thead><tbody>");
    for (label, counts) in &groups {
        let _ = write!(out, "<tr><td>{label}</td>");
        for count in counts {
            let _ = write!(out, "<td>{count}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}
