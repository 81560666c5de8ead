//! The one integration-test binary (one link, fast builds). Store tests run on SQLite and
//! on Postgres (`store_test!`); CLI tests run the real binary.

mod support;

mod attach;
// `auth` and `cli` are declared on the foundation commit but their files are not in it, so
// the binary did not compile; they come back when their modules land.
// mod auth;
// mod cli;
mod demo;
mod store;
