//! The one integration-test binary (one link, fast builds). Store tests run on SQLite and
//! on Postgres (`store_test!`); CLI tests run the real binary.

mod support;

mod attach;
mod attempts;
mod auth;
mod batch_review;
mod bounces;
mod bounces_corpus;
mod bounces_imap;
mod cli;
mod contacts;
mod crash;
mod data_protection;
mod demo;
mod dkim;
mod engine;
mod hostile;
mod isolation;
mod logs_cli;
mod logs_viewer;
mod ops;
mod reliability;
mod secrets;
mod store;
mod templates;
mod tui;
mod tui_batches;
mod tui_composer;
mod tui_dkim;
mod tui_groups;
mod tui_logs;
mod tui_ops;
mod tui_templates;
