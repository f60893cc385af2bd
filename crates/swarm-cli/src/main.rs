//! The `swarm` binary; everything lives in the library (`src/lib.rs`).

fn main() -> std::process::ExitCode {
    swarm_cli::main()
}
