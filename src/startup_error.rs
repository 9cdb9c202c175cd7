//! Errors that stop the server before it serves: each carries the exit status the
//! reference uses (1 for a bad command line, 3 for a script or config that cannot boot).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct StartupError {
    pub message: String,
    pub exit_code: i32,
}

impl StartupError {
    /// The command line is wrong: exit 1, like the reference's argument errors.
    pub fn usage(message: impl Into<String>) -> Self {
        StartupError {
            message: message.into(),
            exit_code: 1,
        }
    }

    /// The script, its environment or the configuration cannot boot: exit 3, like the
    /// reference's "worker failed to boot".
    pub fn boot(message: impl Into<String>) -> Self {
        StartupError {
            message: message.into(),
            exit_code: 3,
        }
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartupError {}
