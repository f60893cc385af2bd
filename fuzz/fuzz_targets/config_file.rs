//! The `swarm` config file parser and the settings resolved from it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swarm_cli::fuzzing::config_file(data));
