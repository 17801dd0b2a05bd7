//! A real two-node Slurm for one test, with the test's sshd box as its login node.
//!
//! `SlurmCluster::start()` writes `tests/fixtures/slurm/{slurm,gres}.conf` (no cgroup.conf: processes are tracked by /proc, which works in a container) into a temp
//! dir of its own (free ports, this host's name), starts a private `munged` (its own key and
//! socket), `slurmctld` and two `slurmd` (nodes `n1`, `n2` in the default partition `debug`,
//! 8 CPUs and two fake GPUs each), and waits, with a deadline, until both nodes are idle; a
//! third node `n3` (partition `big`, 4 GPUs) never gets a slurmd, so what asks for it pends.
//! It gives `None` (test skipped, or failed under FENTON_REQUIRE_ALL=1) when Slurm or munge
//! is missing. `cluster.builder()` is a `TestBox` builder whose box sessions find this
//! cluster (`SLURM_CONF`) and whose profile says `scheduler = "slurm"`; `cluster.client(line)`
//! runs a Slurm command line here, against this cluster, to check what fenton did. Dropping
//! the cluster cancels its jobs and stops every daemon it started (by pid; each also carries
//! a parent-death signal, so none outlives a test process that was killed) — drop the
//! `TestBox` first (declare it after the cluster). Startup takes 1-2 s on a quiet machine, so
//! each test has a cluster of its own and tests never see each other's jobs.
//!
//! That cluster keeps no accounting database (`sacct` says "accounting storage is
//! disabled"; finished jobs are in a job completion file for `sacct -c`).
//! `SlurmCluster::start_with_accounting(min_job_age)` starts one as a real site runs it: a
//! private MariaDB (its own datadir, made by mariadb-install-db, on a socket only) and a
//! `slurmdbd` on a free port before slurmctld, and no job completion file, so what fenton
//! learns of a finished job comes from plain `sacct`. It waits until slurmctld has
//! registered the cluster with slurmdbd, and needs `slurmdbd` and `mariadb-server` too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{available, installed, run, Builder, Out, ROOT};

pub struct SlurmCluster {
    pub root: PathBuf,
    pub conf: PathBuf,
    /// munged, (mariadbd, slurmdbd,) slurmctld, slurmd n1, slurmd n2: stopped in the
    /// reverse order.
    daemons: Vec<(&'static str, Child)>,
    /// The daemons [`SlurmCluster::pause`] stopped, let go on before the clean-up.
    paused: Vec<i32>,
    _tmp: tempfile::TempDir,
}

/// The programs a cluster needs, and their Debian packages (as scripts/test installs them).
const PROGRAMS: [(&str, &str); 6] = [
    ("munged", "munge"),
    ("slurmctld", "slurmctld"),
    ("slurmd", "slurmd"),
    ("sbatch", "slurm-client"),
    ("squeue", "slurm-client"),
    ("setpriv", "util-linux"),
];

/// What a cluster with accounting needs besides.
const ACCOUNTING: [(&str, &str); 5] = [
    ("slurmdbd", "slurmdbd"),
    ("sacctmgr", "slurm-client"),
    ("mariadbd", "mariadb-server"),
    ("mariadb", "mariadb-client"),
    ("mariadb-install-db", "mariadb-server"),
];

/// How long the daemons get to bring both nodes to idle (slow while the machine builds).
const START_LIMIT: Duration = Duration::from_secs(60);

impl SlurmCluster {
    pub fn start() -> Option<SlurmCluster> {
        SlurmCluster::start_with(300)
    }

    /// A cluster whose queue forgets a finished job after `min_job_age` seconds (then only
    /// the accounting, `sacct -c`, knows it).
    pub fn start_with(min_job_age: u32) -> Option<SlurmCluster> {
        SlurmCluster::start_as(min_job_age, false)
    }

    /// A cluster that keeps its accounting in slurmdbd, as a real site does: `sacct`
    /// answers from there, and there is no job completion file for `sacct -c`.
    pub fn start_with_accounting(min_job_age: u32) -> Option<SlurmCluster> {
        SlurmCluster::start_as(min_job_age, true)
    }

    fn start_as(min_job_age: u32, accounting: bool) -> Option<SlurmCluster> {
        let extra: &[(&str, &str)] = if accounting { &ACCOUNTING } else { &[] };
        for (program, package) in PROGRAMS.iter().chain(extra) {
            if !available(&format!("{program} ({package})"), installed(program)) {
                return None;
            }
        }
        let tmp = tempfile::Builder::new()
            .prefix("fenton-slurm")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        for dir in ["munge", "ctld", "spool", "log", "gpu/n1", "gpu/n2"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for node in ["n1", "n2"] {
            for i in 0..2 {
                std::os::unix::fs::symlink("/dev/null", root.join(format!("gpu/{node}/nvidia{i}")))
                    .unwrap();
            }
        }
        // munged wants its key private and its socket's directory searchable by all.
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        mode(&root, 0o755);
        mode(&root.join("munge"), 0o755);
        let key = root.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut bytes)
            .unwrap();
        std::fs::write(&key, bytes).unwrap();
        mode(&key, 0o600);

        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .expect("hostname")
            .trim()
            .split('.')
            .next()
            .unwrap()
            .to_string();
        let ports = free_ports(5);
        let fixture = |name: &str| {
            std::fs::read_to_string(Path::new(ROOT).join("tests/fixtures/slurm").join(name))
                .unwrap()
        };
        let kept = fixture(if accounting {
            "accounting-slurmdbd.conf"
        } else {
            "accounting-none.conf"
        });
        let fill = |name: &str| {
            let text = fixture(name)
                .replace("{accounting}", kept.trim_end())
                .replace("{root}", &root.to_string_lossy())
                .replace("{host}", &host)
                .replace("{ctld}", &ports[0].to_string())
                .replace("{n1}", &ports[1].to_string())
                .replace("{n2}", &ports[2].to_string())
                .replace("{n3}", &ports[3].to_string())
                .replace("{dbd}", &ports[4].to_string())
                .replace("{min_job_age}", &min_job_age.to_string());
            std::fs::write(root.join(name), text).unwrap();
        };
        for name in ["slurm.conf", "gres.conf"] {
            fill(name);
        }
        let conf = root.join("slurm.conf");
        let mut cluster = SlurmCluster {
            root: root.clone(),
            conf: conf.clone(),
            daemons: vec![],
            paused: vec![],
            _tmp: tmp,
        };
        let m = |name: &str| root.join("munge").join(name);
        cluster.spawn(
            "munged",
            &[
                sbin("munged").as_os_str(),
                "-F".as_ref(),
                format!("--socket={}", m("socket").display()).as_ref(),
                format!("--key-file={}", key.display()).as_ref(),
                format!("--pid-file={}", m("munged.pid").display()).as_ref(),
                format!("--log-file={}", m("munged.log").display()).as_ref(),
                format!("--seed-file={}", m("munged.seed").display()).as_ref(),
            ],
        );
        super::wait_until("munged's socket", START_LIMIT, || m("socket").exists());
        if accounting {
            fill("slurmdbd.conf");
            mode(&root.join("slurmdbd.conf"), 0o600);
            cluster.start_accounting();
        }
        let c = conf.to_string_lossy().into_owned();
        let (ctld, slurmd) = (sbin("slurmctld"), sbin("slurmd"));
        cluster.spawn(
            "slurmctld",
            &[ctld.as_os_str(), "-D".as_ref(), "-f".as_ref(), c.as_ref()],
        );
        for (name, node) in [("slurmd n1", "n1"), ("slurmd n2", "n2")] {
            let argv = [
                slurmd.as_os_str(),
                "-D".as_ref(),
                "-N".as_ref(),
                node.as_ref(),
            ];
            cluster.spawn(name, &[&argv[..], &["-f".as_ref(), c.as_ref()]].concat());
        }
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let out = cluster.client("sinfo -h -N -p debug -o '%N %t'");
            let idle = out.stdout.lines().filter(|l| l.ends_with(" idle")).count();
            if idle == 2 {
                break;
            }
            if let Some(dead) = cluster.dead() {
                panic!("{dead} ended while the cluster started\n{}", cluster.logs());
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {START_LIMIT:?} waiting for nodes n1 and n2 to be idle (sinfo: {:?} {:?})\n{}",
                    out.stdout,
                    out.stderr,
                    cluster.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if accounting {
            // Jobs run before slurmctld is registered would reach sacct only once it is.
            let port = ports[0].to_string();
            cluster.wait_for("slurmctld to register cluster fenton with slurmdbd", |c| {
                let out = c.client("sacctmgr -n -P list cluster format=cluster,controlport");
                let done = out.stdout.lines().any(|l| l == format!("fenton|{port}"));
                (!done).then(|| format!("sacctmgr list cluster: {out:?}"))
            });
        }
        Some(cluster)
    }

    /// A private MariaDB (socket only) and slurmdbd over it, answering sacctmgr.
    fn start_accounting(&mut self) {
        let db = self.root.join("mysql");
        std::fs::create_dir_all(&db).unwrap();
        let (data, socket) = (db.join("data"), db.join("socket"));
        let arg = |key: &str, path: &Path| format!("--{key}={}", path.display());
        // As root, mariadbd runs only when told to; otherwise as whoever runs the tests.
        let user: &[&str] = if nix::unistd::geteuid().is_root() {
            &["--user=root"]
        } else {
            &[]
        };
        // (--no-defaults first: the machine's own my.cnf names its own datadir and socket.)
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(arg("datadir", &data))
            .args(user)
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdin(Stdio::null());
        let out = run(install, START_LIMIT);
        assert_eq!(
            out.code,
            Some(0),
            "mariadb-install-db failed: {}{}",
            out.stdout,
            out.stderr
        );
        let mariadbd = sbin("mariadbd");
        let argv = [
            mariadbd.into_os_string(),
            "--no-defaults".into(),
            arg("datadir", &data).into(),
            arg("socket", &socket).into(),
            arg("pid-file", &db.join("mariadbd.pid")).into(),
            arg("log-error", &self.root.join("log/mariadbd.log")).into(),
            "--skip-networking".into(),
            "--innodb-buffer-pool-size=16M".into(),
        ];
        let user: Vec<std::ffi::OsString> = user.iter().map(|u| u.into()).collect();
        let argv: Vec<&std::ffi::OsStr> = argv.iter().chain(&user).map(|a| a.as_os_str()).collect();
        self.spawn("mariadbd", &argv);
        self.wait_for("MariaDB's socket", |_| {
            (!socket.exists()).then(|| format!("no {}", socket.display()))
        });
        std::fs::write(
            db.join("my.cnf"),
            format!("[client]\nsocket={}\n", socket.display()),
        )
        .unwrap();
        let dbd = sbin("slurmdbd");
        self.spawn("slurmdbd", &[dbd.as_os_str(), "-D".as_ref()]);
        self.wait_for("slurmdbd to answer sacctmgr", |c| {
            let out = c.client("sacctmgr -n -P list cluster format=cluster");
            (out.code != Some(0)).then(|| format!("sacctmgr list cluster: {out:?}"))
        });
        // Its tables are in this cluster's MariaDB, not in a server of the machine's.
        let mut tables = Command::new("mariadb");
        tables
            .arg("--no-defaults")
            .arg(arg("socket", &socket))
            .args(["-u", "root", "-N", "-e", "show databases"])
            .stdin(Stdio::null());
        let out = run(tables, Duration::from_secs(30));
        assert!(
            out.stdout.lines().any(|l| l == "slurm_acct_db"),
            "slurmdbd made no tables in the cluster's own MariaDB: {out:?}\n{}",
            self.logs()
        );
    }

    /// Waits for a condition while the daemons start, and fails naming what it waited for,
    /// or the daemon that ended meanwhile, with their logs. `pending` says what it sees
    /// until the condition holds (None once it does).
    fn wait_for(&mut self, what: &str, mut pending: impl FnMut(&mut Self) -> Option<String>) {
        let deadline = Instant::now() + START_LIMIT;
        while let Some(seen) = pending(self) {
            if let Some(dead) = self.dead() {
                panic!(
                    "{dead} ended while waiting for {what} ({seen})\n{}",
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {START_LIMIT:?} waiting for {what} ({seen})\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(&mut self, name: &'static str, argv: &[&std::ffi::OsStr]) {
        let log = std::fs::File::create(
            self.root
                .join("log")
                .join(format!("{}.out", name.replace(' ', "-"))),
        )
        .unwrap();
        // setpriv's parent-death signal: a killed test process takes its daemons with it.
        let mut cmd = Command::new("setpriv");
        cmd.arg("--pdeathsig=KILL")
            .arg("--")
            .args(argv)
            .env("SLURM_CONF", &self.conf);
        if name == "slurmdbd" {
            // Its way to the private MariaDB, which listens on no port: the socket, named
            // by the client options read last (after the machine's own /etc/mysql, which
            // names the system server's), and no ~/.my.cnf of the user's.
            let db = self.root.join("mysql");
            cmd.env("MYSQL_UNIX_PORT", db.join("socket"))
                .env("MYSQL_HOME", &db)
                .env("MARIADB_HOME", &db)
                .env("HOME", &db);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// Stops slurmctld (as a crash or a maintenance would): the nodes and their jobs go on,
    /// and every client command fails until [`SlurmCluster::start_controller`].
    pub fn stop_controller(&mut self) {
        let i = self
            .daemons
            .iter()
            .position(|(name, _)| *name == "slurmctld")
            .expect("slurmctld runs");
        let (_, mut child) = self.daemons.remove(i);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        super::wait_until("slurmctld to stop", Duration::from_secs(20), || {
            !matches!(child.try_wait(), Ok(None))
        });
    }

    /// Starts slurmctld again (it recovers its jobs from its state directory), and waits
    /// until squeue answers.
    pub fn start_controller(&mut self) {
        let c = self.conf.to_string_lossy().into_owned();
        let ctld = sbin("slurmctld");
        self.spawn(
            "slurmctld",
            &[ctld.as_os_str(), "-D".as_ref(), "-f".as_ref(), c.as_ref()],
        );
        super::wait_until("squeue to answer again", START_LIMIT, || {
            self.client("squeue -h -o %i").code == Some(0)
        });
    }

    /// Stops a daemon (`slurmd n1`) where it is (SIGSTOP), as a wedged node would: it holds
    /// its port but answers nothing, so a job on it runs on and a cancel of it never
    /// completes, until [`SlurmCluster::resume`] (or the clean-up).
    pub fn pause(&mut self, name: &str) {
        let pid = self.pid(name);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        self.paused.push(pid);
    }

    pub fn resume(&mut self, name: &str) {
        let pid = self.pid(name);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGCONT);
        self.paused.retain(|p| *p != pid);
    }

    fn pid(&self, name: &str) -> i32 {
        let (_, child) = self
            .daemons
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} runs"));
        child.id() as i32
    }

    /// The first daemon that is no longer running.
    fn dead(&mut self) -> Option<&'static str> {
        self.daemons
            .iter_mut()
            .find_map(|(name, child)| (!matches!(child.try_wait(), Ok(None))).then_some(*name))
    }

    /// A shell line run here against this cluster (`squeue …`), 30 s at most.
    pub fn client(&self, line: &str) -> Out {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", line])
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null());
        run(cmd, Duration::from_secs(30))
    }

    /// A box whose sessions use this cluster, with `scheduler = "slurm"` in its profile.
    pub fn builder(&self) -> Builder {
        Builder::default()
            .env("SLURM_CONF", &self.conf.to_string_lossy())
            .profile("scheduler = \"slurm\"")
    }

    /// What the daemons logged, for a failed test.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.root.join("log")) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                out.push_str(&format!("--- {} ---\n", entry.path().display()));
                for line in tail.iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Where a daemon's program is (sbin is not on every PATH).
fn sbin(program: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin:/usr/local/sbin";
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.into())
}

/// `n` ports free on 127.0.0.1 now (held together, so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        // Jobs first, while the daemons can still end them (their processes are no child
        // of ours); then the daemons, newest first.
        for pid in std::mem::take(&mut self.paused) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGCONT);
        }
        if self.dead().is_none() {
            let _ = self.client("scancel --user=\"$(id -un)\" 2>/dev/null");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline
                && !self
                    .client("squeue -h -o %i 2>/dev/null")
                    .stdout
                    .trim()
                    .is_empty()
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, child) in self.daemons.iter_mut().rev() {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
