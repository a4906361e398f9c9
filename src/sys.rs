//! The bottom layer: process, time and file primitives that know nothing of NixOS or WSL.
//! Everything above uses these instead of reaching for the syscalls again, and nothing here
//! uses any other module of ours.
//!
//! | module | concept |
//! |---|---|
//! | [`deadline`] | a point in time to give up at, polling until it, and the "tell the user after a second" rule |
//! | [`pidfd`] | `pidfd_open(2)` / `pidfd_send_signal(2)`: processes by descriptor, never by reusable PID |
//! | [`child`] | running a helper program bounded by a deadline |
//! | [`exec`] | `execv(2)`/`execve(2)` from Rust strings |
//! | [`signals`] | the signal state an exec'd program expects |
//! | [`fs`] | mount-point checks |
//! | [`state`] | files under `/run/nixos-wsl/` that never follow a planted link |

pub(crate) mod child;
pub(crate) mod deadline;
pub(crate) mod exec;
pub(crate) mod fs;
pub(crate) mod pidfd;
pub(crate) mod signals;
pub(crate) mod state;
