//! `fenton run`, `jobs`, `logs` and `kill` on a Slurm profile, against a real two-node Slurm
//! (tests/common/slurm.rs) whose login node is the test's sshd box.

use crate::common::slurm::SlurmCluster;

#[test]
fn the_login_node_reaches_the_cluster() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    let out = test
        .run(["exec", "--", "sinfo", "-h", "-o", "%P %D %G"])
        .ok();
    assert!(out.stdout.contains("debug* 2 gpu:2"), "{out:?}");
    assert!(out.stdout.contains("big 1 gpu:4"), "{out:?}");
}
