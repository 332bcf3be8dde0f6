//! Binary encoding of an item's value in the embedded store.
//!
//! Value format 1 (the current one):
//! `format u8 (= 1) | version u64 LE | expires i64 LE (i64::MIN = none) | attrs len u32 LE
//! | attrs JSON | data flag u8 | data bytes`.
//!
//! Format 0 (stores written before the format byte existed) is the same without the
//! leading byte. A store file records its value format in the `argus_meta` table;
//! opening a format-0 file rewrites its values to format 1 once, in one transaction
//! ([`crate::embedded`]). A value whose format byte is unknown (written by a newer
//! Argus) is reported as unreadable, never read as something else.

use argus_model::{Item, StoreError, UnixSecs};

/// The value format this build writes (and the newest it reads).
pub const FORMAT: u8 = 1;
/// Bytes before the attributes: format, version, expiry, attrs length.
const HEAD: usize = 1 + 8 + 8 + 4;

pub fn encode(item: &Item, version: u64) -> Vec<u8> {
    let attrs = serde_json::to_vec(&item.attrs).expect("json map serializes");
    let data_len = item.data.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(HEAD + 1 + attrs.len() + data_len);
    out.push(FORMAT);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&item.expires_at.map_or(i64::MIN, |t| t.0).to_le_bytes());
    out.extend_from_slice(&(attrs.len() as u32).to_le_bytes());
    out.extend_from_slice(&attrs);
    match &item.data {
        Some(d) => {
            out.push(1);
            out.extend_from_slice(d);
        }
        None => out.push(0),
    }
    out
}

/// The item's stored version (0 for a value too short to hold one).
pub fn version(bytes: &[u8]) -> Result<u64, StoreError> {
    match bytes.first() {
        None => Ok(0),
        Some(&FORMAT) if bytes.len() >= 9 => {
            Ok(u64::from_le_bytes(bytes[1..9].try_into().unwrap()))
        }
        Some(&FORMAT) => Ok(0),
        Some(&f) => Err(unknown_format(f)),
    }
}

fn unknown_format(f: u8) -> StoreError {
    StoreError::Permanent(format!(
        "embedded store value format {f} is unknown (this build reads format {FORMAT}; was the file written by a newer Argus?)"
    ))
}

/// A format-0 value (no format byte) as format 1.
pub fn upgrade_v0(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(FORMAT);
    out.extend_from_slice(bytes);
    out
}

pub fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, StoreError> {
    let corrupt = || StoreError::Permanent(format!("corrupt item {pk:?}/{sk:?}"));
    match bytes.first() {
        Some(&FORMAT) => {}
        Some(&f) => {
            return Err(StoreError::Permanent(format!(
                "item {pk:?}/{sk:?}: {}",
                unknown_format(f)
            )))
        }
        None => return Err(corrupt()),
    }
    if bytes.len() < HEAD + 1 {
        return Err(corrupt());
    }
    let version = u64::from_le_bytes(bytes[1..9].try_into().unwrap());
    let exp = i64::from_le_bytes(bytes[9..17].try_into().unwrap());
    let alen = u32::from_le_bytes(bytes[17..21].try_into().unwrap()) as usize;
    if bytes.len() < HEAD + 1 + alen {
        return Err(corrupt());
    }
    let attrs = serde_json::from_slice(&bytes[HEAD..HEAD + alen]).map_err(|_| corrupt())?;
    let data = match bytes[HEAD + alen] {
        1 => Some(bytes[HEAD + 1 + alen..].to_vec()),
        0 => None,
        _ => return Err(corrupt()),
    };
    Ok(Item {
        pk: pk.to_string(),
        sk: sk.to_string(),
        attrs,
        data,
        version,
        expires_at: (exp != i64::MIN).then_some(UnixSecs(exp)),
    })
}

/// Composite key: pk, NUL, sk. Sorting by it groups a partition and orders by sort key.
pub fn key(pk: &str, sk: &str) -> Result<String, StoreError> {
    if pk.contains('\0') || sk.contains('\0') {
        return Err(StoreError::Permanent("keys must not contain NUL".into()));
    }
    if pk.is_empty() {
        return Err(StoreError::Permanent(
            "partition key must not be empty".into(),
        ));
    }
    Ok(format!("{pk}\0{sk}"))
}

pub fn split_key(k: &str) -> (&str, &str) {
    k.split_once('\0').unwrap_or((k, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Item {
        let mut i = Item::new("p", "s");
        i.attrs.insert("a".into(), serde_json::json!("b"));
        i.data = Some(vec![1, 2, 3]);
        i.expires_at = Some(UnixSecs(1_700_000_000));
        i
    }

    #[test]
    fn round_trip_with_the_format_byte_first() {
        let b = encode(&item(), 7);
        assert_eq!(b[0], FORMAT);
        assert_eq!(version(&b).unwrap(), 7);
        let d = decode("p", "s", &b).unwrap();
        assert_eq!(
            (d.version, d.expires_at, d.data),
            (7, Some(UnixSecs(1_700_000_000)), Some(vec![1, 2, 3]))
        );
        assert_eq!(d.attrs, item().attrs);
    }

    #[test]
    fn a_format_0_value_upgrades_to_the_same_item() {
        let v1 = encode(&item(), 3);
        let v0 = &v1[1..];
        assert_eq!(upgrade_v0(v0), v1);
    }

    #[test]
    fn an_unknown_format_is_an_error_naming_it() {
        let mut b = encode(&item(), 3);
        b[0] = 2;
        let e = decode("p", "s", &b).unwrap_err().to_string();
        assert!(e.contains("value format 2 is unknown"), "{e}");
        assert!(version(&b).is_err());
        // A truncated value and a bad data flag are corrupt, not defaults.
        let good = encode(&item(), 3);
        assert!(decode("p", "s", &good[..10]).is_err());
        let mut flag = encode(&Item::new("p", "s"), 1);
        let last = flag.len() - 1;
        flag[last] = 9;
        assert!(decode("p", "s", &flag).is_err());
    }
}
