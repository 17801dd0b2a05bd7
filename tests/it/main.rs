//! fenton's integration tests: one binary, real sshd, tmux, sshfs and Jupyter.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod box_text;
mod cli;
mod code;
mod config;
mod connection;
mod doctor;
mod exec;
mod fs;
mod interactive;
mod job_faults;
mod job_progress;
mod jobs;
mod jupyter;
mod login_shell;
mod many;
mod monitor;
mod slurm;
mod slurm_accounting;
mod slurm_list;
mod slurm_status;
mod status;
mod tunnel;
