//! The `swarm` config file parser and the settings resolved from it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::config_file(data));
