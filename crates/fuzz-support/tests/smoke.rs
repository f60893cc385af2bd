//! Stable smoke runs of every fuzz target: its committed seeds plus thousands of
//! deterministic mutations, through the same entry points the fuzz targets call
//! (docs/RELIABILITY.md, "Fuzzing").

#[path = "../../../fuzz/smoke.rs"]
mod smoke;

#[test]
fn validation_survives_seeds_and_mutations() {
    let ran = smoke::run("validate", 50_000, fuzz_support::validation);
    assert!(ran > 50_000);
}

#[test]
fn store_record_decoding_survives_seeds_and_mutations() {
    let ran = smoke::run("store_record", 20_000, fuzz_support::store_record);
    assert!(ran > 20_000);
}

#[test]
fn fly_json_decoding_survives_seeds_and_mutations() {
    let ran = smoke::run("fly_json", 10_000, fuzz_support::fly_json);
    assert!(ran > 10_000);
}

#[test]
fn config_file_parsing_survives_seeds_and_mutations() {
    let ran = smoke::run("config_file", 20_000, fuzz_support::config_file);
    assert!(ran > 20_000);
}
