//! Everything that differs between Linux and Windows: where an environment keeps its
//! Python, how child processes are tied to the server and how they are stopped, and how
//! an exit status reads. (What activating a conda env sets is in `conda`.)

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// The Python executables an environment folder (venv or conda env) may hold, most
/// likely first.
pub fn pythons_in_env(prefix: &Path) -> Vec<PathBuf> {
    if cfg!(windows) {
        vec![
            prefix.join("Scripts").join("python.exe"),
            prefix.join("python.exe"),
        ]
    } else {
        vec![
            prefix.join("bin").join("python3"),
            prefix.join("bin").join("python"),
        ]
    }
}

/// The separator of `PATH`-like variables.
pub const PATH_SEPARATOR: &str = if cfg!(windows) { ";" } else { ":" };

/// Ties a runner to the server: on Linux the kernel kills it when the server dies (even
/// by SIGKILL), and it gets its own process group so that a Ctrl+C in the terminal
/// reaches only the server, which then drains and stops the runners in order.
pub fn tie_child_to_server(command: &mut tokio::process::Command) {
    #[cfg(unix)]
    {
        let server_pid = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid, setpgid, _exit) run
        // between fork and exec.
        unsafe {
            command.pre_exec(move || {
                #[cfg(target_os = "linux")]
                {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    // The server may have died between fork and prctl.
                    if libc::getppid() as u32 != server_pid {
                        libc::_exit(1);
                    }
                }
                let _ = server_pid;
                libc::setpgid(0, 0);
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        // CREATE_NEW_PROCESS_GROUP: Ctrl+C in the console reaches only the server.
        command.creation_flags(0x0000_0200);
    }
}

/// Kills every process left in a worker's process group (the worker leads it, see
/// `tie_child_to_server`): a shell or a forked child the script started must not
/// outlive its worker holding the worker's pipes.
pub fn kill_process_group(leader_pid: u32) {
    #[cfg(unix)]
    {
        let Ok(pgid) = libc::pid_t::try_from(leader_pid) else {
            return;
        };
        if pgid > 1 {
            // SAFETY: kill(2) with a negative pid signals that process group only.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = leader_pid;
}

/// Pipe capacity asked for on Linux (the default `pipe-max-size`): a 1 MB body then
/// crosses in one write instead of sixteen 64 KiB rounds of wake-ups.
#[cfg(target_os = "linux")]
const PIPE_CAPACITY: libc::c_int = 1024 * 1024;

/// Enlarges a pipe to the system's maximum where the OS allows it; a refusal (a lower
/// `pipe-max-size`, another OS) just keeps the default size.
#[cfg(unix)]
pub fn enlarge_pipe<P: std::os::fd::AsRawFd>(pipe: &P) {
    #[cfg(target_os = "linux")]
    unsafe {
        // SAFETY: F_SETPIPE_SZ only changes the capacity of a pipe we own.
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_CAPACITY);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

#[cfg(not(unix))]
pub fn enlarge_pipe<P>(_pipe: &P) {}

/// How a runner ended, for the log and for the client's 500.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "an unknown status".to_string();
    };
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal} ({})", signal_name(signal));
        }
    }
    "an unknown status".to_string()
}

#[cfg(unix)]
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV, a crash in native code",
        libc::SIGKILL => "SIGKILL, killed by the OOM killer or by hand",
        libc::SIGABRT => "SIGABRT, an abort in native code",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_layouts_name_the_platform_python() {
        let candidates = pythons_in_env(Path::new("/envs/x"));
        if cfg!(windows) {
            assert!(candidates[0].ends_with("Scripts/python.exe"));
        } else {
            assert_eq!(candidates[0], PathBuf::from("/envs/x/bin/python3"));
        }
    }
}
