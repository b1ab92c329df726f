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
///
/// Built without transparent huge pages (`no_thp`): with them its arenas took the console's
/// peak memory from glibc's 13.4 MiB to 23.7 MiB at 1,000 cached mentions (15.1 MiB without).
/// SQLite keeps the C library's allocator: routed through mimalloc too (`override`), SQLite's
/// inserts ran slower, in the raw insert as in the store.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
