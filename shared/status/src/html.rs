//! Server-rendered pages (maud: every interpolated value is HTML-escaped). No external
//! assets: one stylesheet at `/static/status.css`, inline SVG charts with a `<title>`,
//! an `aria-label` and a text summary or table, no JavaScript (`?refresh=N` adds a
//! `<meta http-equiv=refresh>`).

use crate::ids;
use crate::results::{ResultRow, PHASES};
use crate::rollup::{Outage, Summary, HOUR_MS};
use crate::view::{self, History, TargetStats, WINDOWS};
use crate::{Audience, Params, StatusConfig};
use argus_model::{Kv, Millis, StoreError, Target};
use argus_notify::alert::StoredAlert;
use argus_rules::{AlertState, RuleGroup, RuleKind};
use bytes::Bytes;
use http::{header, Response, StatusCode};
use maud::{html, Markup, DOCTYPE};
use std::fmt::Write;

pub(crate) struct Ctx<'a> {
    pub cfg: &'a StatusConfig,
    pub audience: Audience,
    pub params: Params,
    pub now: Millis,
    pub reading: view::Reading<'a>,
}

impl Ctx<'_> {
    fn private(&self) -> bool {
        self.audience == Audience::Private
    }
    fn title(&self) -> &str {
        self.cfg.title.as_deref().unwrap_or("Argus status")
    }
}

const CSS: &str = include_str!("status.css");

pub(crate) fn stylesheet() -> Response<Bytes> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "max-age=300")
        .body(Bytes::from_static(CSS.as_bytes()))
        .expect("static response parts are valid")
}

fn respond(status: StatusCode, page: Markup) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Bytes::from(page.into_string()))
        .expect("static response parts are valid")
}

fn layout(title: &str, refresh: Option<u32>, site: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                @if let Some(r) = refresh { meta http-equiv="refresh" content=(r); }
                title { (title) }
                link rel="stylesheet" href="/static/status.css";
            }
            body {
                header { nav { a href="/" { (site) } " " a href="/alerts" { "Alerts" } } }
                main { (body) }
            }
        }
    }
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response<Bytes> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    respond(
        status,
        layout(
            &title,
            None,
            "Argus status",
            html! { h1 { (title) } p.error { (message) } },
        ),
    )
}

/// "3 min ago" style age.
pub fn ago(now: Millis, t: Millis) -> String {
    let s = (now - t).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

fn when(now: Millis, t: Millis) -> Markup {
    html! { time datetime=(argus_model::time::rfc3339(t)) { (ago(now, t)) } }
}

/// Percentage with two decimals, the figure the page and badges show.
pub fn percent(s: &Summary) -> String {
    format!("{:.2}%", s.up as f64 * 100.0 / s.n.max(1) as f64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Up,
    Down,
    Paused,
    Never,
}

impl State {
    pub fn of(t: &Target, last: Option<&ResultRow>) -> State {
        match (t.enabled, last) {
            (false, _) => State::Paused,
            (true, None) => State::Never,
            (true, Some(r)) if r.success => State::Up,
            (true, Some(_)) => State::Down,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Paused => "paused",
            State::Never => "never probed",
        }
    }
    pub fn class(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Paused => "paused",
            State::Never => "never",
        }
    }
}

/// Days until `probe_ssl_earliest_cert_expiry`.
pub fn cert_days(now: Millis, last: Option<&ResultRow>) -> Option<i64> {
    last?
        .cert_expiry
        .map(|e| (e * 1000 - now).div_euclid(86_400_000))
}

fn alerts_for<'a>(alerts: &'a [StoredAlert], t: &Target) -> Vec<&'a StoredAlert> {
    alerts
        .iter()
        .filter(|a| a.labels.get("instance") == Some(t.url.as_str()))
        .collect()
}

// ------------------------------------------------------------------ charts

/// Hourly means for the chart: per hour, the phase means (ms) or the mean duration.
fn chart_series(hourly: &[(Millis, Option<&Summary>)]) -> (bool, Vec<Option<[f64; 5]>>) {
    let phased = hourly.iter().any(|(_, s)| s.is_some_and(|s| s.ph_n > 0));
    let v = hourly
        .iter()
        .map(|(_, s)| {
            s.map(|s| match (phased, s.mean_phases_ms()) {
                (true, Some(p)) => p,
                _ => [0.0, 0.0, 0.0, s.mean_duration_ms(), 0.0],
            })
        })
        .collect();
    (phased, v)
}

fn ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// `ms(v)` written to `w`.
fn write_ms(w: &mut impl Write, v: f64) {
    let _ = if v >= 10.0 {
        write!(w, "{v:.0} ms")
    } else {
        write!(w, "{v:.1} ms")
    };
}

/// The chart's text alternative, written to `w`.
fn chart_label(w: &mut impl Write, hourly: &[(Millis, Option<&Summary>)]) {
    let all = crate::rollup::tally(hourly.iter().filter_map(|(_, s)| *s));
    let Some(all) = all else {
        let _ = w.write_str("Response time, last 24 h: no checks");
        return;
    };
    let _ = w.write_str("Response time, last 24 h: mean ");
    write_ms(w, all.mean_duration_ms());
    if let Some(p) = all.mean_phases_ms() {
        let _ = w.write_str(" (");
        for (i, (name, v)) in PHASES.iter().zip(p).enumerate() {
            if i > 0 {
                let _ = w.write_str(", ");
            }
            let _ = w.write_str(name);
            let _ = w.write_char(' ');
            write_ms(w, v);
        }
        let _ = w.write_char(')');
    }
}

/// Appends `v` in decimal (the chart's coordinates: far cheaper than `write!`).
fn push_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

/// Stacked hourly bars, one path per phase (24 columns, `h` units high), rendered
/// straight into the page (1,000 of them on the index).
struct Chart<'a> {
    hourly: &'a [(Millis, Option<&'a Summary>)],
    h: u32,
    class: &'static str,
}

fn chart<'a>(
    hourly: &'a [(Millis, Option<&'a Summary>)],
    h: u32,
    class: &'static str,
) -> Chart<'a> {
    Chart { hourly, h, class }
}

impl maud::Render for Chart<'_> {
    fn render_to(&self, out: &mut String) {
        let h = self.h;
        let (phased, series) = chart_series(self.hourly);
        let max = series
            .iter()
            .flatten()
            .map(|p| p.iter().sum::<f64>())
            .fold(0.0, f64::max);
        // Each column's strokes, in whole units: (y0, y1) per phase.
        let mut strokes = [[(0i64, 0i64); 5]; 24];
        if max > 0.0 {
            for (x, p) in series.iter().enumerate().take(24) {
                let Some(p) = p else { continue };
                let mut base = 0.0;
                for (i, v) in p.iter().enumerate() {
                    let top = base + v / max * h as f64;
                    strokes[x][i] = (
                        (h as f64 - top).round() as i64,
                        (h as f64 - base).round() as i64,
                    );
                    base = top;
                }
            }
        }
        out.push_str("<svg class=\"");
        out.push_str(self.class);
        out.push_str("\" viewBox=\"0 0 24 ");
        push_int(out, h.into());
        out.push_str("\" preserveAspectRatio=\"none\" role=\"img\"><title>");
        chart_label(&mut maud::Escaper::new(out), self.hourly);
        out.push_str("</title>");
        for i in 0..5 {
            let mut open = false;
            for (x, col) in strokes.iter().enumerate() {
                let (y0, y1) = col[i];
                if y1 <= y0 {
                    continue;
                }
                if !open {
                    out.push_str("<path class=\"");
                    out.push_str(if phased {
                        ["p0", "p1", "p2", "p3", "p4"][i]
                    } else {
                        "pt"
                    });
                    out.push_str("\" d=\"");
                    open = true;
                }
                // A vertical stroke one unit wide, centred on the column.
                out.push('M');
                push_int(out, x as i64);
                out.push_str(".5 ");
                push_int(out, y0);
                out.push('V');
                push_int(out, y1);
            }
            if open {
                out.push_str("\"></path>");
            }
        }
        out.push_str("</svg>");
    }
}

/// An uptime cell (`td.uptime` with its window and check counts).
struct UptimeCell<'a>(Option<&'a Summary>, &'static str);

impl maud::Render for UptimeCell<'_> {
    fn render_to(&self, out: &mut String) {
        out.push_str("<td class=\"uptime\" data-window=\"");
        out.push_str(self.1);
        out.push_str("\" data-checks=\"");
        match self.0 {
            Some(s) => {
                push_int(out, s.up.into());
                out.push('/');
                push_int(out, s.n.into());
                out.push_str("\">");
                let _ = write!(out, "{:.2}%", s.up as f64 * 100.0 / s.n.max(1) as f64);
            }
            None => out.push_str("0/0\">–"),
        }
        out.push_str("</td>");
    }
}

// ------------------------------------------------------------------ index

pub(crate) async fn index(kv: &dyn Kv, ctx: &Ctx<'_>) -> Result<Response<Bytes>, StoreError> {
    let (targets, bad_targets) = view::targets(kv).await?;
    let targets: Vec<Target> = targets.into_iter().filter(|t| ctx.cfg.shows(t)).collect();
    let hist = History::load_with(kv, ctx.now, None, &ctx.reading).await?;
    let mut bad = hist.unreadable.clone();
    let alerts = if ctx.private() {
        bad.extend(bad_targets);
        view::firing_alerts(kv, ctx.now, &mut bad).await?
    } else {
        Vec::new()
    };
    let rows: Vec<(Target, TargetStats, State)> = targets
        .into_iter()
        .map(|t| {
            let s = hist.index_stats(&t.id);
            let st = State::of(&t, s.last());
            (t, s, st)
        })
        .collect();
    let count = |x: State| rows.iter().filter(|r| r.2 == x).count();
    let body = html! {
        h1 { (ctx.title()) }
        p.summary {
            span.up { (count(State::Up)) " up" } " · "
            span.down { (count(State::Down)) " down" } " · "
            span.paused { (count(State::Paused)) " paused" } " · "
            span.never { (count(State::Never)) " never probed" }
        }
        @if ctx.private() && !bad.is_empty() { (bad_list(&bad)) }
        table.targets {
            thead { tr {
                th { "Target" } th { "State" } th { "Last check" }
                th { "24 h" } th { "7 d" } th { "30 d" }
                th { "Response, 24 h" } th { "TLS" }
                @if ctx.private() { th { "Alerts" } }
            } }
            tbody {
                @for (t, s, st) in &rows {
                    // Written inline (not through a function returning Markup): the
                    // rows go straight into the page's one buffer.
                    @let last = s.last();
                    tr data-target=(t.id) data-state=(st.class()) {
                        td.t { a href=(ids::target_path(&t.id)) { (t.id) } }
                        td.s.(st.class()) { (st.as_str()) }
                        td.last {
                            @if let Some(r) = last {
                                (when(ctx.now, r.at))
                                @if ctx.private() { @if let Some(e) = &r.error { " " small.err { (e) } } }
                            }
                        }
                        @for w in WINDOWS { (uptime_cell(s.window(w), w)) }
                        td.chart { (chart(&s.hourly, 20, "spark")) }
                        td.tls { @if let Some(d) = cert_days(ctx.now, last) { (d) " d" } }
                        @if ctx.private() {
                            td.alerts { @for a in alerts_for(&alerts, t) { span.firing { (a.labels.get("alertname").unwrap_or("alert")) } " " } }
                        }
                    }
                    @for (l, ls) in &s.locations { (location_row(ctx, t, l, ls)) }
                }
            }
        }
        (footer(ctx, &hist))
    };
    Ok(respond(
        StatusCode::OK,
        layout(ctx.title(), ctx.params.refresh, ctx.title(), body),
    ))
}

fn bad_list(bad: &[String]) -> Markup {
    html! {
        details.bad {
            summary { (bad.len()) " stored items could not be read (they are kept as they are)" }
            ul { @for b in bad { li { (b) } } }
        }
    }
}

fn footer(ctx: &Ctx<'_>, hist: &History) -> Markup {
    html! {
        footer {
            "Rendered " (argus_model::time::rfc3339(ctx.now)) " from " (hist.items_read)
            " stored items. Uptime windows are UTC-aligned: the current hour and the 23 before it; today and the 6 or 29 days before it."
        }
    }
}

fn uptime_cell<'a>(s: Option<&'a Summary>, w: &'static str) -> UptimeCell<'a> {
    UptimeCell(s, w)
}

/// A target's row for one location (multi-location probing): its own state, last
/// check and error, and uptime.
fn location_row(ctx: &Ctx<'_>, t: &Target, loc: &str, s: &TargetStats) -> Markup {
    let st = State::of(t, s.last());
    html! {
        tr.loc data-of=(t.id) data-location=(loc) data-state=(st.class()) {
            td.t { "↳ " span.locname { (loc) } }
            td.s.(st.class()) { (st.as_str()) }
            td.last {
                @if let Some(r) = s.last() {
                    (when(ctx.now, r.at))
                    @if ctx.private() { @if let Some(e) = &r.error { " " small.err { (e) } } }
                }
            }
            @for w in WINDOWS { (uptime_cell(s.window(w), w)) }
            td.chart {} td.tls {}
            @if ctx.private() { td.alerts {} }
        }
    }
}

/// The per-location table of a target page, and how the overall state is formed.
fn locations_table(ctx: &Ctx<'_>, t: &Target, s: &TargetStats) -> Markup {
    let rule = match ctx.reading.quorum {
        Some(q) => format!(
            "at least {q} of the locations that checked in it (all of them when fewer checked)"
        ),
        None => "a majority of the locations that checked in it".to_string(),
    };
    html! {
        h2 { "Locations" }
        p { "The overall state and uptime are the quorum view: a round of checks (one per location, within a minute) counts as down when " (rule) " failed." }
        table.locations {
            thead { tr { th { "Location" } th { "State" } th { "Last check" } @if ctx.private() { th { "Error" } } th { "24 h" } th { "7 d" } th { "30 d" } } }
            tbody { @for (l, ls) in &s.locations {
                @let st = State::of(t, ls.last());
                tr data-location=(l) data-state=(st.class()) {
                    td { (l) }
                    td.s.(st.class()) { (st.as_str()) }
                    td { @if let Some(r) = ls.last() { (when(ctx.now, r.at)) ", " (r.duration_ms) " ms" } }
                    @if ctx.private() { td.err { @if let Some(r) = ls.last() { (r.error.as_deref().unwrap_or("")) } } }
                    @for w in WINDOWS { (uptime_cell(ls.window(w), w)) }
                }
            } }
        }
    }
}

// ------------------------------------------------------------------ target page

pub(crate) async fn target(
    kv: &dyn Kv,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<Response<Bytes>, StoreError> {
    let item = kv.get(argus_model::Table::Targets, id, "").await?;
    let t = match item.as_ref().map(Target::from_item) {
        Some(Ok(t)) if ctx.cfg.shows(&t) => t,
        Some(Err(e)) if ctx.private() => {
            return Ok(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the target item cannot be read: {e}"),
            ))
        }
        _ => {
            return Ok(error_page(
                StatusCode::NOT_FOUND,
                &format!("No target with id {id:?}."),
            ))
        }
    };
    let hist = History::load_with(kv, ctx.now, Some(&t.id), &ctx.reading).await?;
    let s = hist.stats(&t.id);
    let st = State::of(&t, s.last());
    let mut bad = hist.unreadable.clone();
    let alerts = if ctx.private() {
        view::firing_alerts(kv, ctx.now, &mut bad).await?
    } else {
        Vec::new()
    };
    let mine = alerts_for(&alerts, &t);
    let outages: Vec<&Outage> = s
        .w30d
        .as_ref()
        .map(|x| x.outages.iter().rev().take(20).collect())
        .unwrap_or_default();
    let body = html! {
        h1 { (t.id) }
        p { span.s.(st.class()) data-state=(st.class()) { (st.as_str()) } " · " code { (t.url) } }
        @if ctx.private() && !bad.is_empty() { (bad_list(&bad)) }
        dl.facts {
            dt { "Module" } dd { (t.module) }
            dt { "Interval" } dd { (t.interval.map(argus_model::time::format_duration).unwrap_or_else(|| "every run".into())) }
            @if let Some(r) = s.last() {
                dt { "Last check" } dd { (when(ctx.now, r.at)) ", " (r.duration_ms) " ms"
                    @if let Some(c) = r.status_code { ", HTTP " (c) }
                    @if ctx.private() { @if let Some(e) = &r.error { br; span.err { (e) } } } }
            }
            @if let Some(d) = cert_days(ctx.now, s.last()) { dt { "TLS certificate" } dd { (d) " days left" } }
            @if ctx.private() {
                dt { "Labels" } dd { @if t.labels.is_empty() { "none" } @for (k, v) in &t.labels { code.label { (k) "=\"" (v) "\"" } " " } }
            }
        }
        @if !s.locations.is_empty() { (locations_table(ctx, &t, &s)) }
        h2 { "Uptime" }
        table.uptime {
            thead { tr { th { "Window" } th { "Uptime" } th { "Checks" } th { "Mean response" } } }
            tbody { @for w in WINDOWS {
                tr { td { (w) } (uptime_cell(s.window(w), w))
                    td { @if let Some(x) = s.window(w) { (x.up) " of " (x.n) " ok" } }
                    td { @if let Some(x) = s.window(w) { (ms(x.mean_duration_ms())) } } }
            } }
        }
        h2 { "Response time, last 24 h" }
        (chart(&s.hourly, 100, "big"))
        p.legend { @for (i, p) in PHASES.iter().enumerate() { span.(format!("k{i}")) { (p) } " " } }
        (hourly_table(&s.hourly))
        @if ctx.private() {
            h2 { "Alerts firing" }
            @if mine.is_empty() { p { "None." } }
            ul { @for a in &mine { li.firing { (a.labels.get("alertname").unwrap_or("alert")) " since " (when(ctx.now, a.starts_at))
                @for (k, v) in a.annotations.iter() { br; small { (k) ": " (v) } } } } }
        }
        h2 { "Last outages" }
        @if outages.is_empty() { p { "None in the last 30 days." } } @else {
            table.outages {
                thead { tr { th { "Start" } th { "End" } th { "Duration" } @if ctx.private() { th { "Error" } } } }
                tbody { @for o in &outages {
                    tr data-from=(o.from) {
                        td { (argus_model::time::rfc3339(o.from)) }
                        td { @match o.to { Some(e) => (argus_model::time::rfc3339(e)), None => "ongoing" } }
                        td { (span(o.to.unwrap_or(ctx.now) - o.from)) }
                        @if ctx.private() { td.err { (o.error.as_deref().unwrap_or("")) } }
                    }
                } }
            }
        }
        @if ctx.private() {
            h2 { "Last failed probe's debug output" }
            @match s.w30d.as_ref().and_then(|x| x.fail_log.as_ref()) {
                Some((at, lines)) => { p { (when(ctx.now, *at)) } pre.log { @for l in lines { (l) "\n" } } },
                None => p { "No failed probe with a log in the last 30 days (logs of successful probes are not stored)." },
            }
        }
        (footer(ctx, &hist))
    };
    Ok(respond(
        StatusCode::OK,
        layout(&t.id, ctx.params.refresh, ctx.title(), body),
    ))
}

fn hourly_table(hourly: &[(Millis, Option<&Summary>)]) -> Markup {
    html! {
        details.hours {
            summary { "Hourly figures (table)" }
            table {
                thead { tr { th { "Hour (UTC)" } th { "Checks" } th { "Mean" } @for p in PHASES { th { (p) } } } }
                tbody { @for (h, s) in hourly { @if let Some(s) = s {
                    tr { td { (argus_model::time::to_datetime(*h).format("%m-%d %H:00")) " – " (argus_model::time::to_datetime(*h + HOUR_MS).format("%H:00")) }
                        td { (s.up) "/" (s.n) } td { (ms(s.mean_duration_ms())) }
                        @match s.mean_phases_ms() { Some(p) => { @for v in p { td { (ms(v)) } } }, None => { @for _ in PHASES { td { "–" } } } } }
                } } }
            }
        }
    }
}

// ------------------------------------------------------------------ alerts

pub(crate) async fn alerts(
    kv: &dyn Kv,
    ctx: &Ctx<'_>,
    groups: &[(String, RuleGroup)],
) -> Result<Response<Bytes>, StoreError> {
    let mut bad = Vec::new();
    let mut states = Vec::with_capacity(groups.len());
    for (key, _) in groups {
        states.push(view::group_state(kv, key, &mut bad).await?);
    }
    let silences = view::silences(kv, ctx.now, &mut bad).await?;
    // (rule state, active alerts) per alerting rule.
    let mut counts = [0usize; 3];
    let mut body_groups = Vec::new();
    for ((key, g), st) in groups.iter().zip(&states) {
        let mut rules = Vec::new();
        for (i, r) in g.rules.iter().enumerate() {
            if r.kind != RuleKind::Alerting {
                continue;
            }
            let rs = st
                .as_ref()
                .and_then(|s| s.rules.get(i))
                .filter(|s| s.name == r.name);
            let mut active: Vec<&argus_rules::ActiveAlert> =
                rs.map(|s| s.active_alerts().collect()).unwrap_or_default();
            active.sort_by_key(|a| (a.state != AlertState::Firing, a.active_at));
            let state = if active.iter().any(|a| a.state == AlertState::Firing) {
                AlertState::Firing
            } else if active.iter().any(|a| a.state == AlertState::Pending) {
                AlertState::Pending
            } else {
                AlertState::Inactive
            };
            counts[match state {
                AlertState::Inactive => 0,
                AlertState::Pending => 1,
                AlertState::Firing => 2,
            }] += 1;
            rules.push((r, state, active, rs.and_then(|s| s.last_error.clone())));
        }
        body_groups.push((key, g, rules));
    }
    let body = html! {
        h1 { "Alerts" }
        p.summary {
            span.inactive { "Inactive (" (counts[0]) ")" } " · "
            span.pending { "Pending (" (counts[1]) ")" } " · "
            span.firing { "Firing (" (counts[2]) ")" }
        }
        @if !bad.is_empty() { (bad_list(&bad)) }
        @if body_groups.is_empty() { p { "No rule groups are configured." } }
        @for (key, g, rules) in &body_groups {
            section.group data-group=(key) {
                h2 { (g.file) " > " (g.name) }
                @if rules.is_empty() { p { "No alerting rules." } }
                @for (r, state, active, err) in rules {
                    details.rule.(state.as_str()) data-rule=(r.name) data-state=(state.as_str()) open[*state != AlertState::Inactive] {
                        summary { span.name { (r.name) } " (" (active.len()) " active) " span.state { (state.as_str()) } }
                        pre.def { "alert: " (r.name) "\nexpr: " (r.expr_text)
                            @if r.for_ms > 0 { "\nfor: " (argus_model::time::format_duration(std::time::Duration::from_millis(r.for_ms as u64))) }
                            @if r.keep_firing_for_ms > 0 { "\nkeep_firing_for: " (argus_model::time::format_duration(std::time::Duration::from_millis(r.keep_firing_for_ms as u64))) }
                            @if !r.labels.is_empty() { "\nlabels:" @for l in &r.labels { "\n  " (l.name) ": " (l.template.text()) } }
                            @if !r.annotations.is_empty() { "\nannotations:" @for l in &r.annotations { "\n  " (l.name) ": " (l.template.text()) } }
                        }
                        @if let Some(e) = err { p.err { "Last evaluation failed: " (e) } }
                        @if !active.is_empty() {
                            table.active {
                                thead { tr { th { "Labels" } th { "State" } th { "Active since" } th { "Value" } th { "Annotations" } } }
                                tbody { @for a in active {
                                    tr data-state=(a.state.as_str()) {
                                        td { @for (k, v) in a.labels.without_name().iter() { code.label { (k) "=\"" (v) "\"" } " " } }
                                        td.(a.state.as_str()) { (a.state.as_str().to_uppercase()) }
                                        td { (argus_model::time::rfc3339(a.active_at)) }
                                        td { (argus_promql::format_value(a.value)) }
                                        td { @for (k, v) in &a.annotations { b { (k) } ": " (v) br; } }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Silences" }
        @if silences.is_empty() { p { "No silences. Add them with amtool or `argus silences add`." } } @else {
            table.silences {
                thead { tr { th { "State" } th { "Matchers" } th { "Starts" } th { "Ends" } th { "Created by" } th { "Comment" } th { "Id" } } }
                tbody { @for s in &silences {
                    tr data-state=(s.state(ctx.now).as_str()) {
                        td { (s.state(ctx.now).as_str()) }
                        td { @for m in &s.matchers { code.label { (m.name) (match (m.is_equal, m.is_regex) { (true, false) => "=", (false, false) => "!=", (true, true) => "=~", (false, true) => "!~" }) "\"" (m.value) "\"" } " " } }
                        td { (argus_model::time::rfc3339(s.starts_at)) }
                        td { (argus_model::time::rfc3339(s.ends_at)) }
                        td { (s.created_by) } td { (s.comment) } td { code { (s.id) } }
                    }
                } }
            }
        }
        footer { "Rendered " (argus_model::time::rfc3339(ctx.now)) ". Editing silences stays with amtool and `argus silences`." }
    };
    Ok(respond(
        StatusCode::OK,
        layout("Alerts", ctx.params.refresh, ctx.title(), body),
    ))
}
