//! RecallIQ: a terminal application for the RecallIQ multi-tenant email campaign system.
//! The binary (`main.rs`) is a thin shell over this library so that integration tests can
//! drive every layer directly.

pub mod auth;
pub mod backup;
pub mod bounces;
pub mod cli;
pub mod config;
pub mod csvio;
pub mod db;
pub mod demo;
pub mod dkim;
pub mod domain;
pub mod engine;
pub mod mail;
pub mod render;
pub mod secrets;
pub mod tui;
