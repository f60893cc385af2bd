//! Entry point of the `store_record` fuzz target: the store's record decoder.

use swarm_core::model::WorkspaceRecord;
use swarm_core::validate;
use swarm_store::{SqliteStore, StoreError};

/// Feeds `data` to the store's record decoder, as one row's `data` column and as the
/// newline-joined rows `list_workspaces` reads.
///
/// Invariants: never panics; a failure is `StoreError::Corrupt`; whatever decodes
/// encodes again and decodes to the same record, alone and joined as the list query does.
pub fn store_record(data: &[u8]) {
    // SQLite hands sqlx a String; invalid UTF-8 never reaches the decoder.
    let text = String::from_utf8_lossy(data);
    match SqliteStore::decode_record(&text) {
        Ok(record) => round_trip(&record),
        Err(error) => assert_corrupt(&error),
    }
    // As `list_workspaces` reads rows: records joined by newlines, with their count.
    for count in [0, 1, 2] {
        match SqliteStore::decode_records(&text, count) {
            Ok(records) => {
                let mut rows = Vec::with_capacity(records.len());
                for record in &records {
                    round_trip(record);
                    rows.push(encode(record));
                }
                let joined = rows.join("\n");
                match SqliteStore::decode_records(&joined, count) {
                    Ok(again) => assert_eq!(again, records),
                    Err(error) => panic!("joined rows do not decode: {error}\n{joined}"),
                }
            }
            Err(error) => assert_corrupt(&error),
        }
    }
}

fn encode(record: &WorkspaceRecord) -> String {
    match SqliteStore::encode_record(record) {
        Ok(text) => text,
        // A record that loads but cannot be saved again would be stuck.
        Err(error) => panic!("a decoded record does not encode: {error}\n{record:?}"),
    }
}

fn round_trip(record: &WorkspaceRecord) {
    // A name read back obeys the rules it was created under.
    assert!(
        validate::validate_name(record.name.as_str()).is_ok(),
        "{record:?}"
    );
    let text = encode(record);
    match SqliteStore::decode_record(&text) {
        Ok(again) => assert_eq!(&again, record, "{text}"),
        Err(error) => panic!("an encoded record does not decode: {error}\n{text}"),
    }
}

fn assert_corrupt(error: &StoreError) {
    assert!(
        matches!(error, StoreError::Corrupt(message) if message.starts_with("workspace record")),
        "{error:?}"
    );
}
