//! Target ids in links. Ids are URLs (`https://shop.example/health?x=1`) or any string
//! the user chose, so a link carries the id percent-encoded as one path segment: every
//! byte of its UTF-8 form except the unreserved characters `A-Z a-z 0-9 - . _ ~` is
//! written `%XX` (upper-case hex, RFC 3986 §2.1). `/` becomes `%2F`, so the id is
//! always exactly one segment: `/target/https%3A%2F%2Fshop.example%2Fhealth%3Fx%3D1`.
//! Decoding accepts any percent-encoding of the id (lower-case hex too) but refuses
//! malformed escapes and bytes that are not UTF-8.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the RFC 3986 unreserved characters.
pub const ID_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(id: &str) -> String {
    utf8_percent_encode(id, ID_SET).to_string()
}

pub fn decode(seg: &str) -> Result<String, String> {
    let b = seg.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'%'
            && !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            return Err("malformed percent-encoding in the target id".into());
        }
    }
    let s = percent_decode_str(seg)
        .decode_utf8()
        .map_err(|_| "the target id is not UTF-8 once percent-decoded".to_string())?;
    if s.is_empty() {
        return Err("empty target id".into());
    }
    Ok(s.into_owned())
}

/// The target page's path.
pub fn target_path(id: &str) -> String {
    format!("/target/{}", encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        for id in [
            "https://shop.example/health?x=1&y=/z#f",
            "db:5432",
            "é ✓ \"<x>\"",
            "a%2Fb",
        ] {
            let e = encode(id);
            assert!(
                !e.contains('/') && !e.contains('?') && !e.contains('#'),
                "{e}"
            );
            assert_eq!(decode(&e).unwrap(), id);
        }
        assert_eq!(encode("https://a.b/c"), "https%3A%2F%2Fa.b%2Fc");
        assert_eq!(decode("https%3a%2f%2fa.b").unwrap(), "https://a.b");
        assert!(decode("%zz").is_err());
        assert!(decode("abc%2").is_err());
        assert!(decode("%ff").is_err());
        assert!(decode("").is_err());
    }
}
