//! What `fenton status` knows about a box, and how it learns it: the remote script's sections
//! are parsed into [`Status`] (`parse`), drawn for a person (`render`) or serialised for
//! programs (`--json`, a stable schema documented in the README). Everything here is pure, so
//! recorded text makes the tests.

pub mod parse;
pub mod render;
pub mod slurm;

use serde::Serialize;

/// The version of the JSON schema; it changes only when a key changes meaning or goes away.
pub const SCHEMA: u32 = 1;

/// One frame of a box's status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub schema: u32,
    pub profile: String,
    pub host: String,
    pub kernel: String,
    pub uptime_seconds: f64,
    pub load: Load,
    pub cpu: Cpu,
    pub memory: Memory,
    pub disks: Vec<Disk>,
    pub network: Vec<Interface>,
    pub gpu: Gpus,
    pub tmux: Vec<TmuxSession>,
    pub jupyter: Vec<Jupyter>,
    pub jobs: Jobs,
    /// `fenton monitor`'s recorder; null when it was never started or was stopped.
    pub monitor: Option<Recorder>,
    pub mount: Mount,
    pub link: Link,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Recorder {
    /// false: its process is gone without `fenton monitor stop` (a reboot, a kill)
    pub running: bool,
    /// Unix time it started, by the box's clock
    pub since: Option<i64>,
    pub recording_seconds: Option<u64>,
    /// what its files take on the box's disk
    pub kib: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Load {
    pub avg_1m: f64,
    pub avg_5m: f64,
    pub avg_15m: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Cpu {
    pub count: u32,
    pub model: Option<String>,
    /// All cores together, over `sample_seconds`; null without two samples.
    pub utilization_percent: Option<f64>,
    pub per_core_percent: Vec<Option<f64>>,
    pub sample_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Memory {
    pub total_mib: u64,
    /// Total less what the kernel could hand out without swapping (MemAvailable).
    pub used_mib: u64,
    pub available_mib: u64,
    pub swap_total_mib: u64,
    pub swap_used_mib: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Disk {
    /// Why this disk matters: `root`, `home`, `remote_dir` or `mount`.
    pub role: String,
    pub path: String,
    pub filesystem: Option<String>,
    pub mount_point: Option<String>,
    pub total_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_bytes_per_second: Option<f64>,
    pub tx_bytes_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gpus {
    /// `ok`, `none` (no nvidia-smi) or `failed` (nvidia-smi ran and failed).
    pub state: String,
    /// What nvidia-smi said when it failed.
    pub message: Option<String>,
    pub devices: Vec<Gpu>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    pub bus_id: Option<String>,
    pub utilization_percent: Option<f64>,
    pub memory_utilization_percent: Option<f64>,
    pub memory_used_mib: Option<f64>,
    pub memory_total_mib: Option<f64>,
    pub temperature_c: Option<f64>,
    pub power_draw_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub fan_percent: Option<f64>,
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GpuProcess {
    pub pid: u32,
    pub user: Option<String>,
    pub name: String,
    pub memory_used_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TmuxSession {
    pub name: String,
    pub windows: Option<u32>,
    pub attached: bool,
    pub created_unix: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Jupyter {
    pub pid: u32,
    pub user: String,
    pub port: Option<u16>,
    pub command: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Jobs {
    pub running: u32,
    pub finished: u32,
    /// The running ones.
    pub list: Vec<Job>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub pid: Option<u32>,
    pub started_unix: Option<u64>,
    /// How long it has run, by the box's clock.
    pub running_seconds: Option<u64>,
}

/// The laptop's side: is the box's directory mounted here.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Mount {
    pub local_path: String,
    /// Null where this machine has no /proc/mounts to tell.
    pub mounted: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Link {
    /// From sending the status script to its first answer: the network's round trips plus
    /// the box starting a shell, what every warm fenton command pays.
    pub round_trip_ms: Option<f64>,
}
