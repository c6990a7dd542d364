//! Tests of the `phx` binary against the simulated cluster (one test binary).

mod bad_input;
mod cli;
mod faults;
mod guests;
mod invocation;
mod legacy;
mod pct;
mod support;
