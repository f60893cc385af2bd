//! The entry points of the fuzz targets (`fuzz/fuzz_targets/`, nightly only) and of
//! their stable smoke runs (`tests/smoke.rs`). Each feeds one input to one parser or
//! rule of the production crates and panics when an invariant breaks, which is how a
//! fuzzer learns of it. Kept here so no production library carries them.

pub mod config_file;
pub mod fly_json;
pub mod store_record;
pub mod validation;

pub use config_file::config_file;
pub use fly_json::fly_json;
pub use store_record::store_record;
pub use validation::validation;
