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
