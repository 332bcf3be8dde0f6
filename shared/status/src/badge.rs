//! Shields-style SVG badges (flat style: grey label, coloured value), for READMEs.
//! Text widths are estimated from Verdana 11px advance widths by character class, as
//! no font is at hand on the server.

use crate::html::{percent, Ctx, State};
use crate::view::History;
use crate::BadgeKind;
use argus_model::{Kv, StoreError, Target};
use bytes::Bytes;
use http::{header, Response, StatusCode};
use maud::html;

const GREEN: &str = "#4c1";
const YELLOWGREEN: &str = "#a4a61d";
const YELLOW: &str = "#dfb317";
const RED: &str = "#e05d44";
const GREY: &str = "#9f9f9f";

/// Approximate width in px of `s` in Verdana 11px.
fn text_width(s: &str) -> u32 {
    s.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '!' | '|' | '\'' => 4,
            'f' | 't' | 'r' | 'I' | ' ' | '(' | ')' | '[' | ']' => 5,
            'm' | 'w' | 'M' | 'W' | '%' => 11,
            'A'..='Z' => 8,
            _ => 7,
        })
        .sum()
}

/// The badge's SVG text.
pub fn svg(label: &str, value: &str, color: &str) -> String {
    let lw = text_width(label) + 10;
    let vw = text_width(value) + 10;
    let w = lw + vw;
    let title = format!("{label}: {value}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height="20" role="img" aria-label=(title) {
            title { (title) }
            linearGradient id="s" x2="0" y2="100%" { stop offset="0" stop-color="#bbb" stop-opacity=".1" {} stop offset="1" stop-opacity=".1" {} }
            clipPath id="r" { rect width=(w) height="20" rx="3" fill="#fff" {} }
            g clip-path="url(#r)" {
                rect width=(lw) height="20" fill="#555" {}
                rect x=(lw) width=(vw) height="20" fill=(color) {}
                rect width=(w) height="20" fill="url(#s)" {}
            }
            g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11" {
                text x=(lw / 2) y="14" { (label) }
                text x=(lw + vw / 2) y="14" { (value) }
            }
        }
    }
    .into_string()
}

pub fn uptime_color(fraction: f64) -> &'static str {
    match fraction {
        f if f >= 0.999 => GREEN,
        f if f >= 0.99 => YELLOWGREEN,
        f if f >= 0.95 => YELLOW,
        _ => RED,
    }
}

pub(crate) async fn badge(
    kv: &dyn Kv,
    ctx: &Ctx<'_>,
    id: &str,
    kind: BadgeKind,
) -> Result<Response<Bytes>, StoreError> {
    let item = kv.get(argus_model::Table::Targets, id, "").await?;
    let Some(t) = item
        .as_ref()
        .and_then(|i| Target::from_item(i).ok())
        .filter(|t| ctx.cfg.shows(t))
    else {
        return Ok(image(
            StatusCode::NOT_FOUND,
            svg("status", "unknown target", GREY),
        ));
    };
    let hist = History::load_with(kv, ctx.now, Some(&t.id), &ctx.reading).await?;
    let stats = hist.stats(&t.id);
    let body = match kind {
        BadgeKind::Status => {
            let st = State::of(&t, stats.last());
            let color = match st {
                State::Up => GREEN,
                State::Down => RED,
                State::Paused | State::Never => GREY,
            };
            svg("status", st.as_str(), color)
        }
        BadgeKind::Uptime(w) => {
            let label = format!("uptime {w}");
            match stats.window(w) {
                Some(s) => svg(&label, &percent(s), uptime_color(s.up as f64 / s.n as f64)),
                None => svg(&label, "no data", GREY),
            }
        }
    };
    Ok(image(StatusCode::OK, body))
}

fn image(status: StatusCode, body: String) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")
        .header(header::CACHE_CONTROL, "max-age=60")
        .body(Bytes::from(body))
        .expect("static response parts are valid")
}
