//! The one integration-test binary (one link, fast builds). Store tests run on SQLite and
//! on Postgres (`store_test!`); CLI tests run the real binary.

mod support;

mod attach;
mod auth;
mod cli;
mod contacts;
mod demo;
mod engine;
mod ops;
mod store;
mod templates;
mod tui;
mod tui_groups;
mod tui_ops;
mod tui_templates;
