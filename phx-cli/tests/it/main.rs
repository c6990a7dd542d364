//! Tests of the `phx` binary against the simulated cluster (one test binary).

mod cli;
mod pct;
mod support;
