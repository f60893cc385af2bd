//! Name, size, image, timeout, rollback and snapshot id validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::validation(data));
