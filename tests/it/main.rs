//! fenton's integration tests: one binary, real sshd, tmux, sshfs and Jupyter.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod cli;
mod config;
mod connection;
mod interactive;
mod jupyter;
mod tunnel;
