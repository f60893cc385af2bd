//! Stable smoke run of the `config_file` fuzz target: its committed seeds plus a few
//! thousand deterministic mutations, through the same entry point the fuzz target
//! calls (docs/RELIABILITY.md, "Fuzzing").

#[path = "../../../fuzz/smoke.rs"]
mod smoke;

#[test]
fn config_file_parsing_survives_seeds_and_mutations() {
    let ran = smoke::run("config_file", 20_000, swarm_cli::fuzzing::config_file);
    assert!(ran > 20_000);
}
