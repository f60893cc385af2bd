//! Stable smoke run of the `validate` and `store_record` fuzz targets: their committed
//! seeds plus a few thousand deterministic mutations, through the same entry points the
//! fuzz targets call (docs/RELIABILITY.md, "Fuzzing").

#[path = "../../../fuzz/smoke.rs"]
mod smoke;

#[test]
fn validation_survives_seeds_and_mutations() {
    let ran = smoke::run("validate", 50_000, swarm::fuzzing::validation);
    assert!(ran > 50_000);
}

#[test]
fn store_record_decoding_survives_seeds_and_mutations() {
    let ran = smoke::run("store_record", 20_000, swarm::fuzzing::store_record);
    assert!(ran > 20_000);
}
