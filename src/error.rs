//! The one error type every fallible call returns: a message a user can act on, and a kind a
//! caller acts on (the page restarts its engine on a lost device, offers the CPU when no GPU
//! starts, names the file that is wrong) without reading the message.

/// What went wrong, worded for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable compute device: no WebGPU adapter, no Vulkan driver, one that would not start.
    #[error("compute device: {0}")]
    NoDevice(String),
    /// The device failed for good mid-work (its driver reset, the browser's GPU process went,
    /// `device.destroy()`): every later call on it fails; only a fresh device paints again.
    #[error("the compute device was lost: {0}")]
    DeviceLost(String),
    /// The device could not allocate what the work needs (a smaller canvas or fewer views may).
    #[error("out of memory on the compute device: {0}")]
    OutOfMemory(String),
    /// The engine itself went wrong (a result that could not be read back, a gradient missing,
    /// a non-finite step): a defect or a device fault, not the caller's input.
    #[error("{0}")]
    Internal(String),
    /// Input the caller gave is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
    /// A file is truncated, corrupt, or does not match what names it. `path` is where it is
    /// (a folder's file name in the page, a path on disk), empty until a caller that knows it
    /// says so with [`Error::at`]. The message is `path: why`, or `why` alone where it opens
    /// with the path already.
    #[error("{}{why}", if path.is_empty() || why.starts_with(path.as_str()) { String::new() } else { format!("{path}: ") })]
    File { path: String, why: String },
    /// A model this engine cannot run (an architecture or option it does not implement).
    #[error("unsupported model: {0}")]
    Unsupported(String),
}

/// What a caller can do about an error; in JavaScript, the error's `kind` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NoDevice,
    DeviceLost,
    OutOfMemory,
    Internal,
    InvalidInput,
    BadFile,
    UnsupportedModel,
}

impl ErrorKind {
    /// The kind's name in JavaScript (`"device-lost"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::NoDevice => "no-device",
            Self::DeviceLost => "device-lost",
            Self::OutOfMemory => "out-of-memory",
            Self::Internal => "internal",
            Self::InvalidInput => "invalid-input",
            Self::BadFile => "bad-file",
            Self::UnsupportedModel => "unsupported-model",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoDevice(_) => ErrorKind::NoDevice,
            Self::DeviceLost(_) => ErrorKind::DeviceLost,
            Self::OutOfMemory(_) => ErrorKind::OutOfMemory,
            Self::Internal(_) => ErrorKind::Internal,
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::File { .. } => ErrorKind::BadFile,
            Self::Unsupported(_) => ErrorKind::UnsupportedModel,
        }
    }

    /// A file's fault, before anyone has said which file.
    pub fn file(why: impl Into<String>) -> Self {
        Self::File { path: String::new(), why: why.into() }
    }

    /// The file at `path` is the one at fault: a reader of bytes does not know their path,
    /// whoever opened them does. A path already given stays (the innermost knows best).
    pub fn at(self, path: impl std::fmt::Display) -> Self {
        match self {
            Self::File { path: p, why } if p.is_empty() => Self::File { path: path.to_string(), why },
            other => other,
        }
    }

    /// A file named relative to `dir` (a model folder's file by its name) is named by its
    /// full path.
    pub fn under(self, dir: &std::path::Path) -> Self {
        match self {
            Self::File { path, why } if !path.is_empty() => {
                let full = dir.join(&path).display().to_string();
                // The message named the file by its name; it now names it by its path.
                let why = why.strip_prefix(path.as_str()).map_or(why.clone(), |rest| format!("{full}{rest}"));
                Self::File { path: full, why }
            }
            other => other,
        }
    }

    /// The path of the file at fault, if this is a file's fault and it is known.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::File { path, .. } if !path.is_empty() => Some(path),
            _ => None,
        }
    }
}

/// burn reports a device that failed for good as poisoned; cubecl's out-of-memory reaches it
/// only as text (burn-cubecl folds every other server error into a string), so that one
/// sentence is matched here, at the boundary, once.
impl From<burn::tensor::ExecutionError> for Error {
    fn from(error: burn::tensor::ExecutionError) -> Self {
        use burn::tensor::ExecutionError as E;
        match &error {
            E::DevicePoisoned { reason } => Self::DeviceLost(reason.clone()),
            E::WithContext { reason } | E::Generic { reason, .. } if reason.contains("out-of-memory") => {
                Self::OutOfMemory(reason.clone())
            }
            _ => Self::Internal(format!("reading a result back from the device failed: {error}")),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind};

    #[test]
    fn a_file_error_takes_the_path_of_whoever_opened_it_once() {
        let e = Error::file("truncated").at("weights.safetensors").at("models/x/weights.safetensors");
        assert_eq!(e.to_string(), "weights.safetensors: truncated");
        assert_eq!((e.kind(), e.path()), (ErrorKind::BadFile, Some("weights.safetensors")));
        assert_eq!(Error::file("truncated").to_string(), "truncated");
        assert_eq!(Error::file("tokenizer.json is empty").at("tokenizer.json").to_string(), "tokenizer.json is empty");
        assert_eq!(Error::Invalid("x".into()).at("y").path(), None);
        let under = Error::file("weights.safetensors is short").at("weights.safetensors").under(std::path::Path::new("m"));
        assert_eq!((under.to_string().as_str(), under.path()), ("m/weights.safetensors is short", Some("m/weights.safetensors")));
    }

    #[test]
    fn a_poisoned_device_is_lost_and_an_allocation_failure_is_out_of_memory() {
        let poisoned = burn::tensor::ExecutionError::device_poisoned("the kernel faulted");
        assert_eq!(Error::from(poisoned).kind(), ErrorKind::DeviceLost);
        let oom = burn::tensor::ExecutionError::with_context("An out-of-memory error happened during launch");
        assert_eq!(Error::from(oom).kind(), ErrorKind::OutOfMemory);
        let other = burn::tensor::ExecutionError::with_context("a kernel would not compile");
        assert_eq!(Error::from(other).kind(), ErrorKind::Internal);
        assert_eq!(ErrorKind::DeviceLost.name(), "device-lost");
    }
}
