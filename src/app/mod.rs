//! The application: the desk (config, store, library, classifier and connectors wired together),
//! the console state with its one `update`, and the worker that performs its effects.

pub mod compliance;
pub mod desk;
pub mod export;
mod forms;
#[doc(hidden)]
pub mod generate;
pub mod library;
pub mod poller;
pub mod state;
pub mod stats;
pub mod worker;

pub use desk::{Desk, PollReport, Preview, SendError, SendReport};
pub use library::Library;
pub use state::{Action, AppState, Effect, Mode};
