//! Go's own formatting rules, as Prometheus and Alertmanager print with them: the one
//! home of `strconv.Quote` and `%g` (`strconv.FormatFloat(f, 'g', -1, 64)`). Pinned by
//! `tests/go_compat.rs`, which builds a small Go program and compares outputs.
//!
//! Deliberate difference: Go's `strconv.Quote` escapes every rune `unicode.IsPrint`
//! rejects. Without a Unicode category table we escape controls (Cc), format characters
//! (Cf), private use (Co), noncharacters and every space but U+0020 (Z*), which is what
//! Go escapes among assigned characters; a code point unassigned in Go's Unicode
//! version is printed as it is where Go would write `\u....`.

use std::fmt::Write as _;

/// Go's `strconv.Quote` (and `%q` of a string).
pub fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

/// Go's `strconv.Quote` of bytes that may not be UTF-8 (Go strings are bytes): an
/// invalid byte prints as `\xNN`.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if !is_print(c) => {
            let n = c as u32;
            if n <= 0xffff {
                let _ = write!(out, "\\u{n:04x}");
            } else {
                let _ = write!(out, "\\U{n:08x}");
            }
        }
        c => out.push(c),
    }
}

/// Go's `unicode.IsPrint` for assigned characters (see the module note).
fn is_print(c: char) -> bool {
    let n = c as u32;
    if n < 0x7f {
        return n >= 0x20;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    const NOT_PRINT: &[(u32, u32)] = &[
        // Z* that Rust's is_whitespace does not name.
        (0x00a0, 0x00a0),
        (0x2007, 0x2007),
        (0x202f, 0x202f),
        // Cf.
        (0x00ad, 0x00ad),
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x0890, 0x0891),
        (0x08e2, 0x08e2),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        (0x202a, 0x202e),
        (0x2060, 0x2064),
        (0x2066, 0x206f),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
        // Co and noncharacters.
        (0xe000, 0xf8ff),
        (0xfdd0, 0xfdef),
        (0xf0000, 0x10ffff),
    ];
    if (n & 0xfffe) == 0xfffe {
        return false;
    }
    !NOT_PRINT.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (what `fmt.Sprint` and `%v` print for a
/// float64): shortest round-trip digits, exponent form when the decimal exponent is
/// < -4 or >= 6 (`1e+06`, `1e-05`), `+Inf`, `-Inf`, `NaN`, `-0`.
pub fn format_g(f: f64) -> String {
    let mut out = String::new();
    push_g(&mut out, f);
    out
}

/// [`format_g`] appended to `out` without allocating.
pub fn push_g(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Fast path: integral values below 1e6 print as plain integers in Go's %g.
    if f.fract() == 0.0 && f.abs() < 1e6 {
        let _ = write!(out, "{}", f as i64);
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde[-]x" (at most 17
    // digits, a point and a 4-character exponent: fits the stack buffer).
    let mut buf = StackBuf { b: [0; 40], n: 0 };
    let _ = write!(buf, "{:e}", f.abs());
    let e = buf.as_str();
    let (mant, exp) = e.split_once('e').unwrap_or((e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (d0, rest) = mant.split_at(1);
    let rest = rest.strip_prefix('.').unwrap_or("");
    let nd = 1 + rest.len() as i32;
    if f < 0.0 {
        out.push('-');
    }
    // Go: with shortest digits `eprec = 6`; exponent form iff exp < -4 || exp >= 6.
    if !(-4..6).contains(&exp) {
        out.push_str(d0);
        if nd > 1 {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        let _ = write!(out, "{a}");
    } else {
        let dp = exp + 1; // position of the decimal point in the digits d0 + rest
        if dp <= 0 {
            out.push_str("0.");
            for _ in 0..(-dp) {
                out.push('0');
            }
            out.push_str(d0);
            out.push_str(rest);
        } else if dp >= nd {
            out.push_str(d0);
            out.push_str(rest);
            for _ in 0..(dp - nd) {
                out.push('0');
            }
        } else {
            // 1 <= dp < nd: the point falls inside `rest`.
            let split = (dp - 1) as usize;
            out.push_str(d0);
            out.push_str(&rest[..split]);
            out.push('.');
            out.push_str(&rest[split..]);
        }
    }
}

/// A fixed buffer for formatting one float without allocating.
struct StackBuf {
    b: [u8; 40],
    n: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        // Only ASCII from `{:e}` is ever written.
        std::str::from_utf8(&self.b[..self.n]).unwrap_or("0e0")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}
