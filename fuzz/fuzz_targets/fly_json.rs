//! Fly's JSON answers decoded into fly-api's models, and error bodies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::fly_json(data));
