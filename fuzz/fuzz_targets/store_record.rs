//! The store's workspace record decoding (one row, and the list query's array).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::store_record(data));
