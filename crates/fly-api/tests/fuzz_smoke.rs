//! Stable smoke run of the `fly_json` fuzz target: its committed seeds plus a few
//! thousand deterministic mutations, through the same entry point the fuzz target
//! calls (docs/RELIABILITY.md, "Fuzzing").

#[path = "../../../fuzz/smoke.rs"]
mod smoke;

#[test]
fn fly_json_decoding_survives_seeds_and_mutations() {
    let ran = smoke::run("fly_json", 10_000, fly_api::fuzzing::fly_json);
    assert!(ran > 10_000);
}
