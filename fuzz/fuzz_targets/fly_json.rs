//! Fly's JSON answers decoded into fly-api's models, and error bodies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fly_api::fuzzing::fly_json(data));
