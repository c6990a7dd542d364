//! Integration tests of phx-core (one binary).

mod config;
