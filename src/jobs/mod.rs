//! What a job is, apart from where it runs: the box's own background jobs or a Slurm
//! cluster's, behind one small interface.

pub mod resources;
