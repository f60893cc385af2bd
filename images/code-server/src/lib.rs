//! The workspace image (Dockerfile, boot.sh, extensions.txt) lives in this folder;
//! this crate exists only so `cargo test` runs `tests/boot.rs` against the real boot script.
