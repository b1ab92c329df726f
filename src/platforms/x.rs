//! The X connector (not built yet).

use std::sync::Arc;

use super::{AccountSpec, Connector, PlatformError};
use crate::domain::Platform;

pub fn connect(_spec: &AccountSpec) -> Result<Arc<dyn Connector>, PlatformError> {
    Err(PlatformError::NotBuilt {
        platform: Platform::X,
    })
}
