//! Integration tests of phx-core (one binary).

mod boot_order;
mod config;
mod config_invalid;
mod example;
mod graph_props;
mod propstr;
mod support;
mod type_props;
