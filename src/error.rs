//! The one error type every fallible call returns: a message a user can act on.

/// What went wrong, worded for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable compute device (no WebGPU adapter, no Vulkan driver, a lost device).
    #[error("compute device: {0}")]
    Device(String),
    /// A tensor could not be read back from the device.
    #[error("reading a result back from the device failed: {0}")]
    Readback(String),
    /// Input the caller gave is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
