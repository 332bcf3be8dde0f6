//! Binary encoding of an item's value in the embedded store.
//! Layout: version u64 LE | expires i64 LE (i64::MIN = none) | attrs len u32 LE | attrs JSON
//! | data flag u8 | data bytes.

use argus_model::{Item, StoreError};

pub fn encode(item: &Item, version: u64) -> Vec<u8> {
    let attrs = serde_json::to_vec(&item.attrs).expect("json map serializes");
    let data_len = item.data.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(21 + attrs.len() + data_len);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&item.expires_at.unwrap_or(i64::MIN).to_le_bytes());
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

pub fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, StoreError> {
    let corrupt = || StoreError::Permanent(format!("corrupt item {pk:?}/{sk:?}"));
    if bytes.len() < 21 {
        return Err(corrupt());
    }
    let version = u64::from_le_bytes(bytes[0..8].try_into().unwrap());
    let exp = i64::from_le_bytes(bytes[8..16].try_into().unwrap());
    let alen = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    if bytes.len() < 21 + alen {
        return Err(corrupt());
    }
    let attrs = serde_json::from_slice(&bytes[20..20 + alen]).map_err(|_| corrupt())?;
    let data = match bytes[20 + alen] {
        1 => Some(bytes[21 + alen..].to_vec()),
        _ => None,
    };
    Ok(Item {
        pk: pk.to_string(),
        sk: sk.to_string(),
        attrs,
        data,
        version,
        expires_at: (exp != i64::MIN).then_some(exp),
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
