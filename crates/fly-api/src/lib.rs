//! fly-api
