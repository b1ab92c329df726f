//! tonedesk: a terminal triage console for the social-media care desk of a regulated brand.
//!
//! Dependencies point one way: `tui → app → {store, platforms, tone} → domain`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod logging;
pub mod paths;
pub mod platforms;
pub mod store;
pub mod tone;
pub mod tui;

/// The allocator of every program built on this crate (the binary, its tests and benches).
///
/// Parsing and tagging a page makes and drops many small strings; glibc's allocator was about a
/// seventh of the poller's instructions, and mimalloc's fast paths take a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
