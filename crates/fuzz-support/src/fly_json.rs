//! Entry point of the `fly_json` fuzz target: the client's decoding of Fly's answers.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use fly_api::client::decode;
use fly_api::models::{
    App, ExtendVolumeResponse, Lease, ListAppsResponse, LogEntry, LogPage, Machine, Volume,
    VolumeSnapshot, WireLogPage,
};
use fly_api::{ApiError, Error};

/// Decodes `data` as each of Fly's answers this client reads (machines, volumes, apps,
/// snapshots, leases, a logs page) through the client's own decoder, and as an error
/// body through the client's error mapping.
///
/// Invariants: never panics; a decode either succeeds or is `Error::Decode`; whatever
/// decodes encodes and decodes to the same value (models keep unknown fields so a
/// config read from Fly can be sent back unchanged); an API error always has a message;
/// a logs page never hands back an empty continuation token.
pub fn fly_json(data: &[u8]) {
    check::<Machine>(data);
    check::<Vec<Machine>>(data);
    check::<Volume>(data);
    check::<Vec<Volume>>(data);
    check::<ExtendVolumeResponse>(data);
    check::<VolumeSnapshot>(data);
    check::<Vec<VolumeSnapshot>>(data);
    check::<App>(data);
    check::<ListAppsResponse>(data);
    check::<Lease>(data);
    if let Some(page) = decoded::<WireLogPage>(data) {
        let page = LogPage::from(page);
        assert_ne!(page.next_token.as_deref(), Some(""));
        round_trip::<Vec<LogEntry>>(&page.entries);
    }
    // A status from the body's length: known and unknown codes, with and without a reason.
    const STATUSES: [u16; 8] = [400, 404, 409, 412, 422, 429, 503, 599];
    let status = STATUSES[data.len() % STATUSES.len()];
    let error = ApiError::from_response(status, data, None, None);
    assert_eq!(error.status, status);
    assert!(!error.message.is_empty(), "{error:?}");
    assert!(error.to_string().contains(&error.message));
}

fn decoded<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    match decode::<T>(data) {
        Ok(value) => Some(value),
        Err(Error::Decode { .. }) => None,
        Err(other) => panic!("decode failed with a non-decode error: {other:?}"),
    }
}

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Some(value) = decoded::<T>(data) {
        round_trip(&value);
    }
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let text = match serde_json::to_vec(value) {
        Ok(text) => text,
        Err(error) => panic!("a decoded value does not encode: {error}\n{value:?}"),
    };
    let Some(again) = decoded::<T>(&text) else {
        panic!(
            "an encoded value does not decode:\n{}",
            String::from_utf8_lossy(&text)
        );
    };
    if &again != value {
        // serde_json may read a float back one unit off; only that is forgiven.
        let (a, b) = (serde_json::to_value(value), serde_json::to_value(&again));
        let same = matches!((&a, &b), (Ok(a), Ok(b)) if same_json(a, b));
        assert!(same, "changed by a round trip:\n{value:?}\n{again:?}");
    }
}

/// Equality of JSON values, floats compared to within a relative 1e-15.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}
