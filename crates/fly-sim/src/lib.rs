//! fly-sim
